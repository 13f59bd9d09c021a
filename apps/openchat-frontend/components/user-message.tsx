"use client";

import { PencilIcon } from "lucide-react";
import * as React from "react";

import { CollapsibleText } from "@/components/collapsible-text";
import { CopyButton } from "@/components/copy-button";
import { MessageVersions } from "@/components/message-versions";
import { Button } from "@/components/ui/button";
import { Textarea } from "@/components/ui/textarea";
import type { ChatMessage } from "@/lib/chat-state";

type Props = {
  message: ChatMessage;
  busy: boolean;
  /** Edit and resend: the edited text is sent as a new version of the message. */
  onEdit?: (id: string, content: string) => void;
  onSwitchVersion?: (messageId: string) => void;
};

/** The user's message: its text, Copy, Edit and resend, and its versions. */
export function UserMessage({ message, busy, onEdit, onSwitchVersion }: Props) {
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
      <div className="flex items-center gap-0.5">
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
        {onSwitchVersion && <MessageVersions message={message} disabled={busy} onSwitch={onSwitchVersion} />}
      </div>
    </div>
  );
}
