"use client";

import { RotateCcwIcon } from "lucide-react";
import * as React from "react";

import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
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
import { Slider } from "@/components/ui/slider";
import { Textarea } from "@/components/ui/textarea";
import type { ModelOut } from "@/lib/api-client";
import { DEFAULT_SETTINGS, type ChatSettings } from "@/lib/settings";

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

type Props = {
  settings: ChatSettings;
  onChange: (settings: ChatSettings) => void;
  models: ModelOut[];
  defaultModel: ModelOut | null;
  modelsError: string | null;
};

export function SettingsPanel({ settings, onChange, models, defaultModel, modelsError }: Props) {
  const set = <K extends keyof ChatSettings>(key: K, value: ChatSettings[K]) => onChange({ ...settings, [key]: value });
  const selected = settings.model && models.some((m) => m.id === settings.model) ? settings.model : defaultModel?.id;
  const selectedInfo = models.find((m) => m.id === selected);
  const [maxTokensText, setMaxTokensText] = React.useState(settings.max_tokens ? String(settings.max_tokens) : "");
  const [syncedMax, setSyncedMax] = React.useState(settings.max_tokens);
  if (syncedMax !== settings.max_tokens) {
    setSyncedMax(settings.max_tokens);
    setMaxTokensText(settings.max_tokens ? String(settings.max_tokens) : "");
  }
  const maxLimit = selectedInfo?.context_length ?? 32768;

  return (
    <aside className="flex h-full min-h-0 flex-col" aria-label="Chat settings" data-testid="settings-panel">
      <div className="flex items-center justify-between px-4 pt-4 pb-2">
        <h2 className="text-sm font-semibold">Chat settings</h2>
        <Button
          variant="ghost"
          size="sm"
          className="h-7 gap-1.5 text-xs text-muted-foreground"
          onClick={() => onChange({ ...DEFAULT_SETTINGS })}
          title="Reset settings to defaults"
        >
          <RotateCcwIcon className="size-3.5" aria-hidden /> Reset
        </Button>
      </div>
      <div className="flex min-h-0 flex-1 flex-col gap-6 overflow-y-auto px-4 pt-2 pb-6">
        <div className="grid min-w-0 grid-cols-1 gap-2">
          <Label htmlFor="model-select">Model</Label>
          <Select value={selected ?? ""} onValueChange={(v) => set("model", v)} disabled={models.length === 0}>
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
                            <span className="ml-auto pl-2 text-xs text-muted-foreground">{formatContext(m.context_length)}</span>
                          ) : null}
                        </span>
                      </SelectItem>
                    ))}
                  </SelectGroup>
                </React.Fragment>
              ))}
            </SelectContent>
          </Select>
          {selectedInfo && (
            <p className="text-xs text-muted-foreground" data-testid="model-info">
              {providerLabel(selectedInfo.provider)}
              {selectedInfo.context_length ? ` · ${selectedInfo.context_length.toLocaleString()} token context` : ""}
              {selectedInfo.default ? " · default" : ""}
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
        </div>

        <SliderField
          id="temperature"
          label="Temperature"
          hint="Higher is more creative, lower more focused."
          value={settings.temperature}
          min={0}
          max={2}
          step={0.05}
          onChange={(v) => set("temperature", v)}
        />
        <SliderField
          id="top-p"
          label="Top-p"
          hint="Samples from the smallest set of tokens whose probability adds up to p."
          value={settings.top_p}
          min={0}
          max={1}
          step={0.01}
          onChange={(v) => set("top_p", v)}
        />

        <div className="grid gap-2">
          <Label htmlFor="max-tokens">Max tokens</Label>
          <Input
            id="max-tokens"
            type="number"
            inputMode="numeric"
            min={1}
            max={maxLimit}
            placeholder="Server default"
            value={maxTokensText}
            onChange={(e) => {
              setMaxTokensText(e.target.value);
              const n = Number.parseInt(e.target.value, 10);
              if (e.target.value === "") set("max_tokens", null);
              else if (Number.isFinite(n) && n >= 1) set("max_tokens", Math.min(n, maxLimit));
            }}
            aria-describedby="max-tokens-hint"
            data-testid="max-tokens"
          />
          <p id="max-tokens-hint" className="text-xs text-muted-foreground">
            Longest reply, in tokens. Leave empty for the server default.
          </p>
        </div>
        <p className="text-xs text-muted-foreground">
          Settings are saved for this chat and used as defaults for new chats.
        </p>
      </div>
    </aside>
  );
}

function SliderField({
  id,
  label,
  hint,
  value,
  min,
  max,
  step,
  onChange,
}: {
  id: string;
  label: string;
  hint: string;
  value: number;
  min: number;
  max: number;
  step: number;
  onChange: (v: number) => void;
}) {
  return (
    <div className="grid gap-2.5">
      <div className="flex items-center justify-between">
        <Label htmlFor={`${id}-value`}>{label}</Label>
        <Input
          id={`${id}-value`}
          type="number"
          min={min}
          max={max}
          step={step}
          value={value}
          onChange={(e) => {
            const n = Number.parseFloat(e.target.value);
            if (Number.isFinite(n)) onChange(Math.min(max, Math.max(min, n)));
          }}
          className="h-7 w-20 text-right text-xs tabular-nums"
          data-testid={`${id}-input`}
        />
      </div>
      <Slider
        value={[value]}
        min={min}
        max={max}
        step={step}
        onValueChange={(v) => onChange(Number((v[0] ?? value).toFixed(2)))}
        thumbLabel={label}
        aria-describedby={`${id}-hint`}
      />
      <p id={`${id}-hint`} className="text-xs text-muted-foreground">
        {hint}
      </p>
    </div>
  );
}
