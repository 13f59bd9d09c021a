"use client";

import * as React from "react";

import { api } from "@/lib/api";
import { fromApiMessage, type ChatMessage } from "@/lib/chat-state";

type Options = {
  /** The open conversation's id (a ref: answers for one closed since are dropped). */
  activeId: React.RefObject<string | null>;
  /** Messages loaded at a time. */
  pageSize: number;
  /** Shows a conversation's path (the chat's `load`). */
  load: (messages: ChatMessage[], title?: string | null, hasEarlier?: boolean) => void;
  /** Puts the stored path's versions on the messages shown (the chat's `setVersions`). */
  setVersions: (stored: ChatMessage[]) => void;
};

/**
 * Versions of the open conversation's messages. After a reply ends, the stored path is read
 * back: a regenerated reply or an edited question then shows `‹ 2 / 2 ›`. Flipping to another
 * version asks the server to show the path through it, and shows what it answers.
 */
export function useVersions({ activeId, pageSize, load, setVersions }: Options) {
  const refresh = React.useCallback(
    (id: string) => {
      if (id !== activeId.current) return;
      api
        .conversation(id, { limit: pageSize })
        .then((detail) => {
          if (id === activeId.current) setVersions(detail.messages.map(fromApiMessage));
        })
        .catch(() => {
          // The versions show the next time the conversation opens.
        });
    },
    [activeId, pageSize, setVersions],
  );

  const switchTo = React.useCallback(
    async (id: string, messageId: string) => {
      try {
        const detail = await api.branch(id, messageId, { limit: pageSize });
        if (id === activeId.current) load(detail.messages.map(fromApiMessage), detail.title, detail.has_more);
      } catch {
        // The path shown stays, with the versions the server has now (another tab may have
        // changed them); pressing the arrow again tries again.
        refresh(id);
      }
    },
    [activeId, pageSize, load, refresh],
  );

  return { refresh, switchTo };
}
