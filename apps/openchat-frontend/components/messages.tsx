"use client";

import { ArrowDownIcon, ChevronsUpIcon, Clock3Icon, InfoIcon, RotateCwIcon } from "lucide-react";
import * as React from "react";

import { ChatErrorNotice } from "@/components/chat-error";
import { Message } from "@/components/message";
import type { SettingField } from "@/components/settings-panel";
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
  /** Show another version of a message (its stored id) and the path below it. */
  onSwitchVersion: (messageId: string) => void;
  onRetry: () => void;
  onCancelRetry: () => void;
  onOpenSettings: (field: SettingField) => void;
  /** Loading the page of messages before the first one shown (the server has earlier ones: state.hasEarlier). */
  loadingEarlier: boolean;
  onLoadEarlier: () => void;
};

/** How close to the top (px) scrolling up loads the earlier messages. */
const LOAD_EARLIER_PX = 300;

function useCountdown(until: number | null): number {
  const [now, setNow] = React.useState(() => Date.now());
  React.useEffect(() => {
    if (!until) return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [until]);
  return until ? Math.max(0, Math.ceil((until - now) / 1000)) : 0;
}

/** Above a reply whose prompt left out earlier messages: which reply, and how many (kept after a reload). */
function TrimNotice({ omitted }: { omitted: number }) {
  return (
    <p
      className="-mb-4 flex items-center gap-2 pl-10 text-xs text-muted-foreground"
      data-testid="trim-notice"
      data-omitted={omitted}
    >
      <InfoIcon className="size-3.5 shrink-0" aria-hidden />
      {omitted === 1
        ? "1 earlier message was left out of this reply's prompt to fit the model's context window."
        : `${omitted} earlier messages were left out of this reply's prompt to fit the model's context window.`}
    </p>
  );
}

export function Messages({
  conversationId,
  state,
  modelName,
  onRegenerate,
  onEdit,
  onSwitchVersion,
  onRetry,
  onCancelRetry,
  onOpenSettings,
  loadingEarlier,
  onLoadEarlier,
}: Props) {
  const { ref, atBottom, onScroll, scrollToBottom, follow } = useStickToBottom<HTMLDivElement>();
  // Where the list was when earlier messages were asked for: once they are shown above, the
  // messages in view stay where they were (the list grows upwards instead of jumping).
  const anchor = React.useRef<{ firstId: string | undefined; height: number; top: number } | null>(null);
  const firstId = state.messages[0]?.id;
  const loadEarlier = React.useCallback(() => {
    const el = ref.current;
    if (!el || loadingEarlier) return;
    anchor.current = { firstId, height: el.scrollHeight, top: el.scrollTop };
    onLoadEarlier();
  }, [ref, loadingEarlier, firstId, onLoadEarlier]);
  const handleScroll = () => {
    onScroll();
    if (state.hasEarlier && (ref.current?.scrollTop ?? Infinity) < LOAD_EARLIER_PX) loadEarlier();
  };
  const busy = isBusy(state);
  const seconds = useCountdown(state.status === "waiting" ? state.retryAt : null);
  const last = state.messages[state.messages.length - 1];
  const stoppedStats = useStoppedReplyStats(conversationId, state.messages);

  React.useLayoutEffect(() => {
    const el = ref.current;
    const saved = anchor.current;
    if (el && saved && saved.firstId !== state.messages[0]?.id) {
      anchor.current = null;
      el.scrollTop = saved.top + (el.scrollHeight - saved.height);
      return;
    }
    follow();
  }, [state.messages, state.error, state.status, follow, ref]);

  return (
    <div className="relative flex min-h-0 flex-1 flex-col">
      <div
        ref={ref}
        onScroll={handleScroll}
        className="min-h-0 flex-1 overflow-y-auto"
        data-testid="message-list"
        role="log"
        aria-label="Conversation"
        aria-live="off"
      >
        <div className="mx-auto flex w-full max-w-3xl flex-col gap-6 px-4 pt-6 pb-10">
          {state.hasEarlier && (
            <div className="flex justify-center">
              <Button
                variant="outline"
                size="sm"
                onClick={loadEarlier}
                disabled={loadingEarlier}
                data-testid="load-earlier"
              >
                <ChevronsUpIcon aria-hidden /> {loadingEarlier ? "Loading earlier messages…" : "Load earlier messages"}
              </Button>
            </div>
          )}
          {state.messages.map((m, i) => (
            <React.Fragment key={m.id}>
              {m.role === "ai" && !!m.omittedMessages && <TrimNotice omitted={m.omittedMessages} />}
              <Message
                message={m.serverId && stoppedStats[m.serverId] ? { ...m, ...stoppedStats[m.serverId] } : m}
                isLast={i === state.messages.length - 1}
                busy={busy}
                modelName={modelName}
                onRegenerate={m.role === "ai" ? onRegenerate : undefined}
                onEdit={onEdit}
                onSwitchVersion={onSwitchVersion}
              />
            </React.Fragment>
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
            <ChatErrorNotice error={state.error} canRetry={!!last} onRetry={onRetry} onOpenSettings={onOpenSettings} />
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
