"use client";

import { ChevronLeftIcon, ChevronRightIcon } from "lucide-react";

import { Button } from "@/components/ui/button";
import type { ChatMessage } from "@/lib/chat-state";
import { neighbourVersion, versionLabel } from "@/lib/versions";

type Props = {
  message: ChatMessage;
  /** While a reply streams: the path shown cannot change. */
  disabled: boolean;
  /** Show the version with this (stored) id, and the path below it. */
  onSwitch: (messageId: string) => void;
};

/** `‹ 2 / 3 ›` under a message that has other versions (a regenerated reply, an edited question). */
export function MessageVersions({ message, disabled, onSwitch }: Props) {
  const label = versionLabel(message);
  if (!label) return null;
  const previous = neighbourVersion(message, -1);
  const next = neighbourVersion(message, 1);
  return (
    <div
      className="flex items-center text-xs text-muted-foreground tabular-nums"
      role="group"
      aria-label={`Version ${label.replace(" / ", " of ")}`}
      data-testid="message-versions"
    >
      <Button
        variant="ghost"
        size="icon-xs"
        className="text-muted-foreground hover:text-foreground"
        aria-label="Previous version"
        title="Previous version"
        disabled={disabled || !previous}
        onClick={() => previous && onSwitch(previous)}
        data-testid="previous-version"
      >
        <ChevronLeftIcon aria-hidden />
      </Button>
      <span className="min-w-9 text-center" data-testid="version-label">
        {label}
      </span>
      <Button
        variant="ghost"
        size="icon-xs"
        className="text-muted-foreground hover:text-foreground"
        aria-label="Next version"
        title="Next version"
        disabled={disabled || !next}
        onClick={() => next && onSwitch(next)}
        data-testid="next-version"
      >
        <ChevronRightIcon aria-hidden />
      </Button>
    </div>
  );
}
