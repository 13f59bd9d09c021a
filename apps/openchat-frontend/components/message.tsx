"use client";

import { CircleAlertIcon, RefreshCwIcon, RotateCwIcon, SparklesIcon } from "lucide-react";
import * as React from "react";

import { CopyButton } from "@/components/copy-button";
import { MessageVersions } from "@/components/message-versions";
import { PromptProgress } from "@/components/prompt-progress";
import { Button } from "@/components/ui/button";
import { UserMessage } from "@/components/user-message";
import type { ChatMessage } from "@/lib/chat-state";
import { formatStats } from "@/lib/reply-stats";
import { cn } from "@/lib/utils";

// The Markdown renderer (react-markdown, GFM, syntax highlighting) is loaded on demand so
// the first page load stays small; until it arrives the text shows as plain text.
const LazyMarkdown = React.lazy(() => import("@/components/markdown").then((m) => ({ default: m.Markdown })));

export function preloadMarkdown(): void {
  void import("@/components/markdown");
}

function MessageMarkdown({ children }: { children: string }) {
  return (
    <React.Suspense fallback={<div className="prose-chat whitespace-pre-wrap">{children}</div>}>
      <LazyMarkdown>{children}</LazyMarkdown>
    </React.Suspense>
  );
}

function TypingDots() {
  return (
    <span className="inline-flex items-center gap-1 py-2" aria-label="Generating" data-testid="typing-indicator">
      {[0, 1, 2].map((i) => (
        <span
          key={i}
          className="size-1.5 animate-bounce rounded-full bg-muted-foreground/70"
          style={{ animationDelay: `${i * 150}ms` }}
        />
      ))}
    </span>
  );
}

type Props = {
  message: ChatMessage;
  isLast: boolean;
  busy: boolean;
  modelName?: (id: string) => string;
  onRegenerate?: () => void;
  onEdit?: (id: string, content: string) => void;
  /** Show another version of a message (its stored id) and the path below it. */
  onSwitchVersion?: (messageId: string) => void;
};

function AssistantMessage({ message, isLast, busy, modelName, onRegenerate, onSwitchVersion }: Props) {
  const streaming = message.status === "pending" || message.status === "streaming";
  const stats = formatStats(message);
  return (
    <div
      className="group flex gap-3"
      data-testid="message-ai"
      data-role="ai"
      data-status={message.status}
      aria-busy={streaming}
    >
      <span
        className="mt-0.5 flex size-7 shrink-0 items-center justify-center rounded-full border bg-background text-brand"
        aria-hidden
      >
        <SparklesIcon className="size-3.5" />
      </span>
      <div className="min-w-0 flex-1">
        <div data-testid="message-content" className={cn(message.status === "error" && "text-muted-foreground")}>
          {message.content ? (
            <MessageMarkdown>{message.content}</MessageMarkdown>
          ) : streaming ? (
            message.promptProgress ? <PromptProgress progress={message.promptProgress} /> : <TypingDots />
          ) : null}
        </div>
        {message.status === "cancelled" && (
          <p className="mt-1 text-xs text-muted-foreground" data-testid="message-stopped">
            Stopped
          </p>
        )}
        {message.status === "interrupted" && (
          <div className="mt-1 flex flex-wrap items-center gap-2 text-xs text-muted-foreground" data-testid="message-interrupted">
            <CircleAlertIcon className="size-3.5 text-destructive" aria-hidden />
            <span>This reply was interrupted: the server stopped while writing it.</span>
            {isLast && onRegenerate && (
              <Button variant="outline" size="sm" disabled={busy} onClick={onRegenerate} data-testid="interrupted-retry">
                <RotateCwIcon aria-hidden /> Retry
              </Button>
            )}
          </div>
        )}
        {message.status === "generating" && (
          <p className="mt-1 text-xs text-muted-foreground" data-testid="message-generating">
            Still being written: open this conversation again in a moment to see the rest.
          </p>
        )}
        {message.finishReason === "length" && (
          <p className="mt-1 text-xs text-muted-foreground">Reply cut off at the max tokens limit.</p>
        )}
        {!streaming && (
          <div className="mt-1.5 flex flex-wrap items-center gap-x-3 gap-y-1 text-xs text-muted-foreground">
            <div className="-ml-1.5 flex items-center gap-0.5">
              {onSwitchVersion && <MessageVersions message={message} disabled={busy} onSwitch={onSwitchVersion} />}
              <CopyButton label="Copy reply" testId="copy-message" getText={() => message.content} />
              {isLast && onRegenerate && (
                <Button
                  variant="ghost"
                  size="icon-xs"
                  className="text-muted-foreground hover:text-foreground"
                  aria-label="Regenerate reply"
                  title="Regenerate"
                  disabled={busy}
                  onClick={onRegenerate}
                  data-testid="regenerate-button"
                >
                  <RefreshCwIcon aria-hidden />
                </Button>
              )}
            </div>
            {message.model && (
              <span data-testid="message-model" data-model={message.model} title={message.model}>
                {modelName ? modelName(message.model) : message.model}
              </span>
            )}
            {stats.length > 0 && <span data-testid="message-stats">{stats.join(" · ")}</span>}
          </div>
        )}
        {streaming && message.model && (
          <div className="mt-1.5 text-xs text-muted-foreground" data-testid="message-model-streaming">
            {modelName ? modelName(message.model) : message.model}
          </div>
        )}
      </div>
    </div>
  );
}

function MessageImpl(props: Props) {
  if (props.message.role === "user") {
    const { message, busy, onEdit, onSwitchVersion } = props;
    return <UserMessage message={message} busy={busy} onEdit={onEdit} onSwitchVersion={onSwitchVersion} />;
  }
  if (props.message.role === "system") {
    return (
      <div className="rounded-lg border border-dashed px-3 py-2 text-xs text-muted-foreground" data-testid="message-system">
        System: {props.message.content}
      </div>
    );
  }
  return <AssistantMessage {...props} />;
}

export const Message = React.memo(MessageImpl);
