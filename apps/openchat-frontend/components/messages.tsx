"use client";

import { ArrowDownIcon, CircleAlertIcon, Clock3Icon, InfoIcon, RotateCwIcon } from "lucide-react";
import * as React from "react";

import { Message } from "@/components/message";
import { Button } from "@/components/ui/button";
import { useStickToBottom } from "@/hooks/use-stick-to-bottom";
import { useStoppedReplyStats } from "@/hooks/use-stopped-reply-stats";
import type { ChatState } from "@/lib/chat-state";
import { isBusy } from "@/lib/chat-state";

type Props = {
  /** The open conversation (where stopped replies' stats are read back from). */
  conversationId: string | null;
  state: ChatState;
  modelName: (id: string) => string;
  onRegenerate: () => void;
  onEdit: (id: string, content: string) => void;
  onRetry: () => void;
  onCancelRetry: () => void;
};

function useCountdown(until: number | null): number {
  const [now, setNow] = React.useState(() => Date.now());
  React.useEffect(() => {
    if (!until) return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [until]);
  return until ? Math.max(0, Math.ceil((until - now) / 1000)) : 0;
}

export function Messages({ conversationId, state, modelName, onRegenerate, onEdit, onRetry, onCancelRetry }: Props) {
  const { ref, atBottom, onScroll, scrollToBottom, follow } = useStickToBottom<HTMLDivElement>();
  const busy = isBusy(state);
  const seconds = useCountdown(state.status === "waiting" ? state.retryAt : null);
  const last = state.messages[state.messages.length - 1];
  const stoppedStats = useStoppedReplyStats(conversationId, state.messages);

  React.useLayoutEffect(() => {
    follow();
  }, [state.messages, state.error, state.status, follow]);

  return (
    <div className="relative flex min-h-0 flex-1 flex-col">
      <div
        ref={ref}
        onScroll={onScroll}
        className="min-h-0 flex-1 overflow-y-auto"
        data-testid="message-list"
        role="log"
        aria-label="Conversation"
        aria-live="off"
      >
        <div className="mx-auto flex w-full max-w-3xl flex-col gap-6 px-4 pt-6 pb-10">
          {state.notice && (
            <p className="flex items-center gap-2 rounded-lg border bg-muted/50 px-3 py-2 text-xs text-muted-foreground" data-testid="chat-notice">
              <InfoIcon className="size-3.5 shrink-0" aria-hidden />
              {state.notice}
            </p>
          )}
          {state.messages.map((m, i) => (
            <Message
              key={m.id}
              message={m.serverId && stoppedStats[m.serverId] ? { ...m, ...stoppedStats[m.serverId] } : m}
              isLast={i === state.messages.length - 1}
              busy={busy}
              modelName={modelName}
              onRegenerate={m.role === "ai" ? onRegenerate : undefined}
              onEdit={onEdit}
            />
          ))}
          {!busy && !state.error && last?.role === "user" && (
            <div className="flex justify-start pl-10">
              <Button variant="outline" size="sm" onClick={onRetry} data-testid="generate-button">
                <RotateCwIcon aria-hidden /> Generate a reply
              </Button>
            </div>
          )}
          {state.status === "waiting" && (
            <div
              role="status"
              className="flex flex-wrap items-center gap-3 rounded-lg border border-amber-500/40 bg-amber-500/10 px-3 py-2 text-sm"
              data-testid="chat-busy"
            >
              <Clock3Icon className="size-4 shrink-0 text-amber-600 dark:text-amber-400" aria-hidden />
              <span className="flex-1">Model busy, retrying in {seconds} s…</span>
              <Button variant="outline" size="sm" onClick={onCancelRetry}>
                Cancel
              </Button>
            </div>
          )}
          {state.error && !busy && (
            <div
              role="alert"
              className="flex flex-wrap items-center gap-3 rounded-lg border border-destructive/40 bg-destructive/10 px-3 py-2 text-sm"
              data-testid="chat-error"
            >
              <CircleAlertIcon className="size-4 shrink-0 text-destructive" aria-hidden />
              <span className="min-w-0 flex-1">{state.error.message}</span>
              {last && (
                <Button variant="outline" size="sm" onClick={onRetry} data-testid="retry-button">
                  <RotateCwIcon aria-hidden /> Retry
                </Button>
              )}
            </div>
          )}
        </div>
      </div>
      {!atBottom && (
        <Button
          variant="outline"
          size="icon-sm"
          className="absolute bottom-3 left-1/2 -translate-x-1/2 rounded-full bg-background shadow-md"
          onClick={() => scrollToBottom("smooth")}
          aria-label="Jump to the latest message"
          data-testid="jump-to-bottom"
        >
          <ArrowDownIcon aria-hidden />
        </Button>
      )}
    </div>
  );
}
