"use client";

import { ArrowUpIcon, SquareIcon } from "lucide-react";
import * as React from "react";

import { Button } from "@/components/ui/button";
import { cn } from "@/lib/utils";

const MAX_HEIGHT = 240;

export type ComposerHandle = { focus: () => void; setText: (text: string) => void };

type Props = {
  busy: boolean;
  disabled?: boolean;
  onSend: (text: string) => void;
  onStop: () => void;
  placeholder?: string;
};

export const Composer = React.forwardRef<ComposerHandle, Props>(function Composer(
  { busy, disabled, onSend, onStop, placeholder = "Message OpenChat…" },
  ref,
) {
  const [text, setText] = React.useState("");
  const areaRef = React.useRef<HTMLTextAreaElement>(null);

  const resize = React.useCallback(() => {
    const el = areaRef.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, MAX_HEIGHT)}px`;
    el.style.overflowY = el.scrollHeight > MAX_HEIGHT ? "auto" : "hidden";
  }, []);

  React.useImperativeHandle(ref, () => ({
    focus: () => areaRef.current?.focus(),
    setText: (value: string) => {
      setText(value);
      requestAnimationFrame(() => {
        resize();
        areaRef.current?.focus();
      });
    },
  }));

  React.useLayoutEffect(resize, [text, resize]);

  const send = () => {
    const value = text.trim();
    if (!value || busy || disabled) return;
    onSend(value);
    setText("");
  };

  return (
    <form
      className="relative mx-auto w-full max-w-3xl"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
      aria-label="Send a message"
    >
      <div
        className={cn(
          "flex items-end gap-2 rounded-2xl border bg-card p-2 pl-4 shadow-sm transition-colors focus-within:border-ring focus-within:ring-2 focus-within:ring-ring/30",
          disabled && "opacity-60",
        )}
      >
        <label htmlFor="composer" className="sr-only">
          Message
        </label>
        <textarea
          id="composer"
          ref={areaRef}
          rows={1}
          value={text}
          disabled={disabled}
          placeholder={placeholder}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
              e.preventDefault();
              send();
            }
          }}
          className="max-h-60 min-h-9 flex-1 resize-none bg-transparent py-1.5 text-[0.9375rem] leading-6 outline-none placeholder:text-muted-foreground focus-visible:outline-none"
          aria-describedby="composer-hint"
          data-testid="composer-input"
        />
        {/* Stop and Send are distinct elements (keys), and Stop's click cancels any default
            action: stopping re-renders during the click, and a reused <button> that became
            type="submit" would then submit the draft. */}
        {busy ? (
          <Button
            key="stop"
            type="button"
            size="icon"
            variant="default"
            className="rounded-full"
            onClick={(e) => {
              e.preventDefault();
              onStop();
            }}
            aria-label="Stop generating"
            title="Stop (Esc)"
            data-testid="stop-button"
          >
            <SquareIcon className="size-3.5 fill-current" aria-hidden />
          </Button>
        ) : (
          <Button
            key="send"
            type="submit"
            size="icon"
            className="rounded-full"
            disabled={!text.trim() || disabled}
            aria-label="Send message"
            title="Send (Enter)"
            data-testid="send-button"
          >
            <ArrowUpIcon aria-hidden />
          </Button>
        )}
      </div>
      <p id="composer-hint" className="mt-1.5 hidden text-center text-xs text-muted-foreground sm:block">
        Enter to send · Shift+Enter for a new line · Esc to stop · Ctrl+K new chat
      </p>
    </form>
  );
});
