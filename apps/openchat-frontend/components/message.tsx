"use client";

import { CircleAlertIcon, PencilIcon, RefreshCwIcon, RotateCwIcon, SparklesIcon } from "lucide-react";
import * as React from "react";

import { CollapsibleText } from "@/components/collapsible-text";
import { CopyButton } from "@/components/copy-button";
import { PromptProgress } from "@/components/prompt-progress";
import { Button } from "@/components/ui/button";
import { Textarea } from "@/components/ui/textarea";
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
};

function UserMessage({ message, busy, onEdit }: Props) {
  const [editing, setEditing] = React.useState(false);
  const [draft, setDraft] = React.useState(message.content);
  const areaRef = React.useRef<HTMLTextAreaElement>(null);

  React.useEffect(() => {
    if (editing) {
      const el = areaRef.current;
      el?.focus();
      el?.setSelectionRange(el.value.length, el.value.length);
    }
  }, [editing]);

  const submit = () => {
    const text = draft.trim();
    if (!text || busy) return;
    setEditing(false);
    onEdit?.(message.id, text);
  };

  if (editing) {
    return (
      <div className="flex justify-end" data-testid="message-user" data-role="user">
        <div className="w-full max-w-[85%] rounded-2xl border bg-card p-3 shadow-xs">
          <label htmlFor={`edit-${message.id}`} className="sr-only">
            Edit your message
          </label>
          <Textarea
            id={`edit-${message.id}`}
            ref={areaRef}
            value={draft}
            rows={Math.min(10, Math.max(2, draft.split("\n").length))}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
                e.preventDefault();
                submit();
              } else if (e.key === "Escape") {
                e.preventDefault();
                e.stopPropagation();
                setEditing(false);
                setDraft(message.content);
              }
            }}
            className="resize-none border-0 p-0 shadow-none focus-visible:ring-0"
            data-testid="edit-input"
          />
          <div className="mt-2 flex justify-end gap-2">
            <Button
              variant="ghost"
              size="sm"
              onClick={() => {
                setEditing(false);
                setDraft(message.content);
              }}
            >
              Cancel
            </Button>
            <Button size="sm" onClick={submit} disabled={!draft.trim() || busy} data-testid="edit-submit">
              Send
            </Button>
          </div>
        </div>
      </div>
    );
  }

  return (
    <div className="group flex flex-col items-end gap-1" data-testid="message-user" data-role="user">
      <div className="max-w-[85%] rounded-2xl rounded-br-md bg-secondary px-4 py-2.5 text-secondary-foreground">
        <CollapsibleText text={message.content} />
      </div>
      <div className="flex gap-0.5 opacity-100 transition-opacity sm:opacity-0 sm:group-focus-within:opacity-100 sm:group-hover:opacity-100">
        <CopyButton label="Copy message" testId="copy-message" getText={() => message.content} />
        <Button
          variant="ghost"
          size="icon-xs"
          className="text-muted-foreground hover:text-foreground"
          aria-label="Edit message"
          title="Edit and resend"
          disabled={busy}
          data-testid="edit-button"
          onClick={() => {
            setDraft(message.content);
            setEditing(true);
          }}
        >
          <PencilIcon aria-hidden />
        </Button>
      </div>
    </div>
  );
}

function AssistantMessage({ message, isLast, busy, modelName, onRegenerate }: Props) {
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
            <div className="-ml-1.5 flex gap-0.5">
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
  if (props.message.role === "user") return <UserMessage {...props} />;
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
