"use client";

import { ScrollTextIcon } from "lucide-react";

type Props = {
  prompt: string;
  onClick: () => void;
};

/**
 * Shown while the chat has a system prompt, which would otherwise be invisible in the
 * conversation; opens the settings at the prompt.
 */
export function SystemPromptChip({ prompt, onClick }: Props) {
  return (
    <button
      type="button"
      onClick={onClick}
      className="inline-flex max-w-full items-center gap-1.5 rounded-full border bg-background px-2.5 py-0.5 text-xs text-muted-foreground hover:bg-accent hover:text-accent-foreground focus-visible:ring-2 focus-visible:ring-ring/50 focus-visible:outline-none"
      aria-label="System prompt is on: edit it in Chat settings"
      title={prompt.length > 200 ? `${prompt.slice(0, 200)}…` : prompt}
      data-testid="system-prompt-chip"
    >
      <ScrollTextIcon className="size-3.5 shrink-0" aria-hidden />
      System prompt
    </button>
  );
}
