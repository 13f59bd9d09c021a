"use client";

import * as React from "react";

import { api } from "@/lib/api";

const ATTEMPTS = 20;
const INTERVAL_MS = 2_000;

/**
 * After a conversation's first exchange the server writes a short summary title in the
 * background; the reply's stream has ended by then (`end` is its last event). `watch(id,
 * fallback)` reads the conversation back every 2 s (for up to 40 s) until its title is no
 * longer the first message cut short, and hands the summary to `onSummary`.
 */
export function useSummaryTitle(onSummary: (conversationId: string, title: string) => void) {
  const onSummaryRef = React.useRef(onSummary);
  React.useEffect(() => {
    onSummaryRef.current = onSummary;
  });
  const timers = React.useRef(new Map<string, ReturnType<typeof setTimeout>>());

  React.useEffect(() => {
    const pending = timers.current;
    return () => {
      for (const timer of pending.values()) clearTimeout(timer);
      pending.clear();
    };
  }, []);

  return React.useCallback((conversationId: string, fallback: string) => {
    const pending = timers.current;
    if (pending.has(conversationId)) return;
    const attempt = (n: number) => {
      pending.set(
        conversationId,
        setTimeout(async () => {
          let title: string | null | undefined;
          try {
            title = (await api.conversation(conversationId, { limit: 1 })).title; // only the title is needed
          } catch {
            title = undefined; // gone or unreachable: try again, within the bound
          }
          if (!pending.has(conversationId)) return; // unmounted meanwhile
          if (title && title !== fallback) {
            pending.delete(conversationId);
            onSummaryRef.current(conversationId, title);
          } else if (n < ATTEMPTS) attempt(n + 1);
          else pending.delete(conversationId);
        }, INTERVAL_MS),
      );
    };
    attempt(1);
  }, []);
}
