"use client";

import { usePathname } from "next/navigation";
import * as React from "react";

import { UNTITLED } from "@/components/sidebar";
import { useChat } from "@/hooks/use-chat";
import type { useConversations } from "@/hooks/use-conversations";
import { api, ApiError } from "@/lib/api";
import type { ModelOut } from "@/lib/api-client";
import {
  fromApiMessage,
  historyForEdit,
  historyForRegenerate,
  historyForSend,
  isBusy,
  type ChatMessage,
} from "@/lib/chat-state";
import { forgetSettings, loadDefaultSettings, loadSettings, saveSettings, type ChatSettings } from "@/lib/settings";
import { localId, newConversationId } from "@/lib/utils";

/** `/c/<id>` → id; anything else → null (a new chat). */
export function routeConversationId(pathname: string | null): string | null {
  const match = /^\/c\/([^/]+)\/?$/.exec(pathname ?? "");
  if (!match?.[1]) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

export type LoadState = { kind: "ready" } | { kind: "loading" } | { kind: "notfound" } | { kind: "error"; message: string };

type Options = {
  conversations: ReturnType<typeof useConversations>;
  models: ModelOut[];
};

/**
 * The open conversation: which one it is (the URL decides), loading it, its messages and
 * stream (`useChat`), its settings, and the actions on it. A new chat is a draft with a
 * fresh id until its first reply starts; then the URL becomes `/c/<id>`.
 */
export function useActiveChat({ conversations, models }: Options) {
  const routeId = routeConversationId(usePathname());
  const activeId = React.useRef<string | null>(null);
  const isDraft = React.useRef(true);
  const [conversationId, setConversationId] = React.useState<string | null>(null);
  const [settings, setSettingsState] = React.useState<ChatSettings>(loadDefaultSettings);
  const [loadState, setLoadState] = React.useState<LoadState>({ kind: "ready" });

  const { refresh: refreshList, update: updateListItem } = conversations;
  const chat = useChat({
    onStart: (id) => {
      if (id !== activeId.current) return;
      isDraft.current = false;
      if (routeConversationId(window.location.pathname) !== id) {
        window.history.replaceState(null, "", `/c/${encodeURIComponent(id)}`);
      }
      refreshList();
    },
    onEvent: (id, event) => {
      if (event.type === "title") updateListItem(id, { title: event.title });
    },
    onSettled: () => refreshList(),
  });
  const { state, run, stop, load, reset, setTitle } = chat;

  const startNewChat = React.useCallback(() => {
    const id = newConversationId();
    activeId.current = id;
    isDraft.current = true;
    reset();
    setConversationId(id);
    setSettingsState(loadDefaultSettings());
    setLoadState({ kind: "ready" });
  }, [reset]);

  // The URL decides which conversation is open (reload and back/forward work).
  React.useEffect(() => {
    if (routeId === null) {
      if (!isDraft.current || activeId.current === null) startNewChat();
      return;
    }
    if (routeId === activeId.current) return;
    const id = routeId;
    activeId.current = id;
    isDraft.current = false;
    reset();
    setConversationId(id);
    setSettingsState(loadSettings(id));
    setLoadState({ kind: "loading" });
    api
      .conversation(id)
      .then((detail) => {
        if (activeId.current !== id) return;
        load(detail.messages.map(fromApiMessage), detail.title);
        setSettingsState(loadSettings(id, detail.settings));
        setLoadState({ kind: "ready" });
      })
      .catch((e: unknown) => {
        if (activeId.current !== id) return;
        if (e instanceof ApiError && e.status === 404) setLoadState({ kind: "notfound" });
        else setLoadState({ kind: "error", message: e instanceof Error ? e.message : "Could not load the conversation." });
      });
  }, [routeId, startNewChat, reset, load]);

  const updateSettings = (next: ChatSettings) => {
    setSettingsState(next);
    saveSettings(conversationId, next);
  };

  // Never send a model the server no longer lists (fall back to its default).
  const requestSettings = React.useMemo<ChatSettings>(() => {
    if (settings.model && models.length > 0 && !models.some((m) => m.id === settings.model)) {
      return { ...settings, model: null };
    }
    return settings;
  }, [settings, models]);

  const runHistory = (history: ChatMessage[] | null) => {
    if (!history || !conversationId) return;
    void run({ conversationId, history, settings: requestSettings });
  };

  const send = (text: string) => {
    isDraft.current = false;
    runHistory(
      historyForSend(state.messages, { id: localId("u"), role: "user", content: text, status: "complete" }),
    );
  };
  const regenerate = () => runHistory(historyForRegenerate(state.messages));
  const edit = (id: string, content: string) => runHistory(historyForEdit(state.messages, id, content));

  const rename = async (id: string, title: string) => {
    const updated = await api.rename(id, title);
    updateListItem(id, { title: updated?.title ?? title });
    if (id === activeId.current) setTitle(updated?.title ?? title);
  };

  /** Deletes conversation `id`; resolves to whether it was the open one. */
  const remove = async (id: string): Promise<boolean> => {
    conversations.remove(id);
    forgetSettings(id);
    try {
      await api.remove(id);
    } catch {
      refreshList();
    }
    return id === activeId.current;
  };

  const listTitle = conversations.items.find((c) => c.id === conversationId)?.title;
  const title = state.title || listTitle || (state.messages.length > 0 ? UNTITLED : "New chat");
  React.useEffect(() => {
    document.title = state.messages.length > 0 || state.title ? `${title} · OpenChat` : "OpenChat";
  }, [title, state.messages.length, state.title]);

  return {
    conversationId,
    state,
    busy: isBusy(state),
    loadState,
    title,
    settings,
    requestSettings,
    updateSettings,
    startNewChat,
    send,
    regenerate,
    edit,
    stop,
    rename,
    remove,
  };
}
