"use client";

import { RotateCcwIcon } from "lucide-react";
import * as React from "react";

import { DataTransfer } from "@/components/data-transfer";
import { MaxTokensField, SliderField } from "@/components/settings-fields";
import { Button } from "@/components/ui/button";
import { Label } from "@/components/ui/label";
import {
  Select,
  SelectContent,
  SelectGroup,
  SelectItem,
  SelectItemText,
  SelectLabel,
  SelectSeparator,
  SelectTrigger,
  SelectValue,
} from "@/components/ui/select";
import { Textarea } from "@/components/ui/textarea";
import type { ModelOut } from "@/lib/api-client";
import type { ChatSettings, ResolvedSettings } from "@/lib/settings";
import type { ImportResult } from "@/lib/transfer";

const PROVIDER_LABELS: Record<string, string> = {
  local: "Local",
  together: "Together AI",
  "openai-compatible": "OpenAI-compatible",
};

export function providerLabel(provider: string): string {
  return PROVIDER_LABELS[provider] ?? provider;
}

export function formatContext(tokens: number | null | undefined): string {
  if (!tokens) return "";
  return tokens >= 1024 ? `${Math.round(tokens / 1024)}K ctx` : `${tokens} ctx`;
}

function groupModels(models: ModelOut[]): [string, ModelOut[]][] {
  const groups = new Map<string, ModelOut[]>();
  for (const m of models) {
    const list = groups.get(m.provider) ?? [];
    list.push(m);
    groups.set(m.provider, list);
  }
  return [...groups.entries()];
}

/** The settings a message can point to ("change it in Chat settings"), by their input's id. */
export const SETTING_FIELD_IDS = {
  model: "model-select",
  prompt: "system-prompt",
  temperature: "temperature-value",
  top_p: "top-p-value",
  max_tokens: "max-tokens",
} as const;
export type SettingField = keyof typeof SETTING_FIELD_IDS;
/** A request to focus a setting. */
export type SettingFocus = { field: SettingField };

type Props = {
  /** The chosen values (null: the model's default) ... */
  settings: ChatSettings;
  /** ... and what is shown and sent. */
  resolved: ResolvedSettings;
  onChange: (settings: ChatSettings) => void;
  models: ModelOut[];
  /** The model in use (the chosen one, else the default). */
  model: ModelOut | null;
  modelsError: string | null;
  promptForNewChats: boolean;
  onPromptForNewChats: (on: boolean) => void;
  /** Focus this setting (then `onFocused` is called, so that it is done once). */
  focus?: SettingFocus | null;
  onFocused?: () => void;
  /** Conversations were imported (the list shows them). */
  onImported: (result: ImportResult) => void;
};

export function SettingsPanel(props: Props) {
  const { settings, resolved, onChange, models, model, modelsError, promptForNewChats, onPromptForNewChats } = props;
  const { focus, onFocused, onImported } = props;
  const set = <K extends keyof ChatSettings>(key: K, value: ChatSettings[K]) => onChange({ ...settings, [key]: value });
  const sampling = model?.sampling ?? null;

  // Opened from the system prompt chip or an error message: focus the setting it is about.
  React.useEffect(() => {
    if (!focus) return;
    document.getElementById(SETTING_FIELD_IDS[focus.field])?.focus();
    onFocused?.();
  }, [focus, onFocused]);

  return (
    <aside className="flex h-full min-h-0 flex-col" aria-label="Chat settings" data-testid="settings-panel">
      <div className="flex items-center justify-between px-4 pt-4 pb-2">
        <h2 className="text-sm font-semibold">Chat settings</h2>
        <Button
          variant="ghost"
          size="sm"
          className="h-7 gap-1.5 text-xs text-muted-foreground"
          onClick={() => onChange({ ...settings, prompt: "", temperature: null, top_p: null, max_tokens: null })}
          title="Clear the system prompt and use the model's default sampling"
          data-testid="settings-reset"
        >
          <RotateCcwIcon className="size-3.5" aria-hidden /> Reset
        </Button>
      </div>
      <div className="flex min-h-0 flex-1 flex-col gap-6 overflow-y-auto px-4 pt-2 pb-6">
        <div className="grid min-w-0 grid-cols-1 gap-2">
          <Label htmlFor="model-select">Model</Label>
          <Select value={model?.id ?? ""} onValueChange={(v) => set("model", v)} disabled={models.length === 0}>
            <SelectTrigger id="model-select" className="min-w-0" data-testid="model-select">
              <SelectValue placeholder={modelsError ? "Models unavailable" : "Loading models…"} />
            </SelectTrigger>
            <SelectContent>
              {groupModels(models).map(([provider, list], i) => (
                <React.Fragment key={provider}>
                  {i > 0 && <SelectSeparator />}
                  <SelectGroup>
                    <SelectLabel>{providerLabel(provider)}</SelectLabel>
                    {list.map((m) => (
                      <SelectItem key={m.id} value={m.id} data-testid="model-option" data-model={m.id}>
                        <span className="flex w-full items-center gap-2">
                          <SelectItemText>{m.name || m.id}</SelectItemText>
                          {m.default && (
                            <span className="rounded bg-brand/15 px-1.5 py-0.5 text-[0.65rem] font-medium text-brand">
                              default
                            </span>
                          )}
                          {m.context_length ? (
                            <span className="ml-auto shrink-0 pl-2 text-xs whitespace-nowrap text-muted-foreground">{formatContext(m.context_length)}</span>
                          ) : null}
                        </span>
                      </SelectItem>
                    ))}
                  </SelectGroup>
                </React.Fragment>
              ))}
            </SelectContent>
          </Select>
          {model && (
            <p className="text-xs text-muted-foreground" data-testid="model-info">
              {providerLabel(model.provider)}
              {model.context_length ? ` · ${model.context_length.toLocaleString()} token context` : ""}
              {model.default ? " · default" : ""}
            </p>
          )}
          {modelsError && <p className="text-xs text-destructive">{modelsError}</p>}
        </div>

        <div className="grid gap-2">
          <Label htmlFor="system-prompt">System prompt</Label>
          <Textarea
            id="system-prompt"
            value={settings.prompt}
            onChange={(e) => set("prompt", e.target.value)}
            placeholder="You are a helpful assistant."
            rows={5}
            className="resize-y text-sm"
            data-testid="system-prompt"
          />
          <label className="flex items-center gap-2 text-xs text-muted-foreground">
            <input
              type="checkbox"
              className="size-3.5 accent-primary"
              checked={promptForNewChats}
              disabled={!settings.prompt.trim()}
              onChange={(e) => onPromptForNewChats(e.target.checked)}
              data-testid="prompt-for-new-chats"
            />
            Use for new chats
          </label>
        </div>

        <SliderField
          id="temperature"
          label="Temperature"
          hint="Higher is more creative, lower more focused."
          value={resolved.temperature}
          range={sampling?.temperature ?? null}
          onChange={(v) => set("temperature", v)}
          testId="temperature-input"
        />
        <SliderField
          id="top-p"
          label="Top-p"
          hint="Samples from the smallest set of tokens whose probability adds up to p."
          value={resolved.top_p}
          range={sampling?.top_p ?? null}
          onChange={(v) => set("top_p", v)}
          testId="top-p-input"
        />
        <MaxTokensField
          id="max-tokens"
          hint={`Longest reply, in tokens${sampling ? ` (${sampling.max_tokens.default} unless you change it)` : ""}.`}
          value={resolved.max_tokens}
          range={sampling?.max_tokens ?? null}
          onChange={(v) => set("max_tokens", v)}
        />
        <p className="text-xs text-muted-foreground">
          Settings are saved with this chat. New chats start with the last chosen model and its default sampling.
        </p>
        <div className="border-t pt-5">
          <DataTransfer onImported={onImported} />
        </div>
      </div>
    </aside>
  );
}
