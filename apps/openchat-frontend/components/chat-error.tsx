"use client";

import { CircleAlertIcon, RotateCwIcon, SlidersHorizontalIcon } from "lucide-react";

import type { SettingField } from "@/components/settings-panel";
import { Button } from "@/components/ui/button";
import type { ChatError } from "@/lib/chat-state";

type Advice = { hint: string | null; field: SettingField | null };

const OPTION_FIELDS: Record<string, SettingField> = {
  temperature: "temperature",
  top_p: "top_p",
  max_tokens: "max_tokens",
};

/** What the user can change so that sending succeeds, for an error that says it needs a change. */
export function adviceFor(error: ChatError): Advice {
  switch (error.code) {
    case "option_out_of_range": {
      // The server names the option: "Option 'data.max_tokens' must be between 1 and 8191 …"
      const option = /'data\.(\w+)'/.exec(error.message)?.[1] ?? "";
      return { hint: "Change it in Chat settings, then send again.", field: OPTION_FIELDS[option] ?? null };
    }
    case "message_too_long":
      // Over the server's length limit (the detail names its setting), Max tokens does not help.
      if (error.message.includes("OPENCHAT_MAX_MESSAGE_CHARS")) {
        return { hint: "Shorten the message (edit it above), or send it in parts.", field: null };
      }
      return { hint: "Shorten your message (edit it above), or lower Max tokens in Chat settings.", field: "max_tokens" };
    case "too_many_messages":
      return { hint: "This conversation has reached the server's limit: start a new chat to go on.", field: null };
    case "unknown_model":
      return { hint: "Choose another model in Chat settings.", field: "model" };
    case "body_too_large":
      return { hint: "Shorten your message, or start a new chat for a long conversation.", field: null };
    default:
      return { hint: null, field: null };
  }
}

type Props = {
  error: ChatError;
  /** Offer Retry (there is a message to send again). */
  canRetry: boolean;
  onRetry: () => void;
  onOpenSettings: (field: SettingField) => void;
};

/**
 * A failed reply. Retry only where sending the same again may succeed (network, 5xx, …); an
 * error the server will give again (validation, too long) says what to change instead.
 */
export function ChatErrorNotice({ error, canRetry, onRetry, onOpenSettings }: Props) {
  const advice = error.needsChange ? adviceFor(error) : null;
  return (
    <div
      role="alert"
      className="flex flex-wrap items-center gap-3 rounded-lg border border-destructive/40 bg-destructive/10 px-3 py-2 text-sm"
      data-testid="chat-error"
    >
      <CircleAlertIcon className="size-4 shrink-0 text-destructive" aria-hidden />
      <div className="min-w-0 flex-1">
        <p>{error.message}</p>
        {advice?.hint && (
          <p className="mt-0.5 text-muted-foreground" data-testid="chat-error-hint">
            {advice.hint}
          </p>
        )}
      </div>
      {advice?.field && (
        <Button
          variant="outline"
          size="sm"
          onClick={() => advice.field && onOpenSettings(advice.field)}
          data-testid="chat-error-settings"
        >
          <SlidersHorizontalIcon aria-hidden /> Chat settings
        </Button>
      )}
      {!error.needsChange && canRetry && (
        <Button variant="outline" size="sm" onClick={onRetry} data-testid="retry-button">
          <RotateCwIcon aria-hidden /> Retry
        </Button>
      )}
    </div>
  );
}
