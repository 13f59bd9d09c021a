"use client";

import { usePathname } from "next/navigation";
import * as React from "react";

import { UNTITLED } from "@/components/sidebar";
import { useChat } from "@/hooks/use-chat";
import { useChatSettings } from "@/hooks/use-chat-settings";
import { useSummaryTitle } from "@/hooks/use-summary-title";
import { useVersions } from "@/hooks/use-versions";
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
import { MAX_REATTACH_ATTEMPTS, shouldAttach } from "@/lib/resume";
import { fromStoredSettings, newChatSettings, type ChatSettings } from "@/lib/settings";
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

/** Messages loaded at a time: a conversation opens on its latest page, earlier ones load on scrolling up. */
export const PAGE_SIZE = 100;

export type LoadState = { kind: "ready" } | { kind: "loading" } | { kind: "notfound" } | { kind: "error"; message: string };

type Options = {
  conversations: ReturnType<typeof useConversations>;
  models: ModelOut[];
};

/**
 * The open conversation: which one it is (the URL decides), loading it, its messages and
 * stream (`useChat`), its settings (`useChatSettings`: the server's for a stored
 * conversation), and the actions on it. A new chat is a draft with a fresh id until its first
 * reply starts; then the URL becomes `/c/<id>`.
 */
export function useActiveChat({ conversations, models }: Options) {
  const routeId = routeConversationId(usePathname());
  const activeId = React.useRef<string | null>(null);
  const isDraft = React.useRef(true);
  const [conversationId, setConversationId] = React.useState<string | null>(null);
  const [loadState, setLoadState] = React.useState<LoadState>({ kind: "ready" });
  // Bumped to load the open conversation again after it failed to load.
  const [loadAttempt, setLoadAttempt] = React.useState(0);

  const { refresh: refreshList, update: updateListItem } = conversations;
  const chatSettings = useChatSettings(models);
  const { show: showSettings, startNew: startNewSettings, stored: settingsStored } = chatSettings;
  // The first message cut short, per conversation, until its summary title is read back.
  const firstTitles = React.useRef(new Map<string, string>());
  const setOpenTitle = React.useRef<(title: string) => void>(() => {});
  const refreshVersions = React.useRef<(id: string) => void>(() => {});
  const watchSummary = useSummaryTitle((id, title) => {
    updateListItem(id, { title });
    if (id === activeId.current) setOpenTitle.current(title);
  });
  const chat = useChat({
    onStart: (id) => {
      if (id !== activeId.current) return;
      isDraft.current = false;
      settingsStored(id);
      if (routeConversationId(window.location.pathname) !== id) {
        window.history.replaceState(null, "", `/c/${encodeURIComponent(id)}`);
      }
      refreshList();
    },
    onEvent: (id, event) => {
      if (event.type === "title") {
        updateListItem(id, { title: event.title });
        firstTitles.current.set(id, event.title);
      }
    },
    onSettled: (id) => {
      refreshList();
      const fallback = firstTitles.current.get(id);
      firstTitles.current.delete(id);
      if (fallback) watchSummary(id, fallback);
      refreshVersions.current(id);
    },
  });
  const { state, run, attach, stop, load, prepend, reset, setTitle, clearError, setVersions } = chat;
  const versions = useVersions({ activeId, pageSize: PAGE_SIZE, load, setVersions });
  const [loadingEarlier, setLoadingEarlier] = React.useState(false);
  React.useEffect(() => {
    setOpenTitle.current = setTitle;
    refreshVersions.current = versions.refresh;
  }, [setTitle, versions.refresh]);

  const startNewChat = React.useCallback(() => {
    const id = newConversationId();
    activeId.current = id;
    isDraft.current = true;
    reset();
    setConversationId(id);
    startNewSettings();
    setLoadState({ kind: "ready" });
  }, [reset, startNewSettings]);

  /**
   * Reads conversation `id` and shows it; when its last message is a reply still generating,
   * follows it (GET /stream). If that reply ended meanwhile (204), or another one generates now,
   * the conversation is read again (a few times at most: a reply left `generating` by a server
   * that died answers 204 until it is marked interrupted).
   */
  const openConversation = React.useCallback(
    async (id: string): Promise<void> => {
      for (let attempt = 0; attempt <= MAX_REATTACH_ATTEMPTS; attempt++) {
        let detail;
        try {
          detail = await api.conversation(id, { limit: PAGE_SIZE });
        } catch (e) {
          if (activeId.current !== id || attempt > 0) return;
          if (e instanceof ApiError && e.status === 404) setLoadState({ kind: "notfound" });
          else setLoadState({ kind: "error", message: e instanceof Error ? e.message : "Could not load the conversation." });
          return;
        }
        if (activeId.current !== id) return;
        const messages = detail.messages.map(fromApiMessage);
        load(messages, detail.title, detail.has_more);
        if (attempt === 0) {
          showSettings(fromStoredSettings(detail.settings), id);
          setLoadState({ kind: "ready" });
        }
        if (!shouldAttach(messages)) return;
        const stillGenerating = async () => {
          try {
            return shouldAttach((await api.conversation(id, { limit: 1 })).messages.map(fromApiMessage));
          } catch {
            return true; // asked again after the next wait
          }
        };
        const result = await attach(id, messages[messages.length - 1]?.serverId ?? null, stillGenerating);
        if (activeId.current !== id || (result !== "ended" && result !== "other")) return;
      }
    },
    [load, attach, showSettings],
  );

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
    reset(); // whatever streamed here goes on on the server; this tab stops reading it
    setConversationId(id);
    showSettings(newChatSettings(), null); // until the server's arrive
    setLoadState({ kind: "loading" });
    void openConversation(id);
  }, [routeId, startNewChat, reset, showSettings, openConversation, loadAttempt]);

  /** Loads the open conversation again if it failed to load (e.g. while the server was away). */
  const loadFailed = React.useRef(false);
  React.useEffect(() => {
    loadFailed.current = loadState.kind === "error";
  }, [loadState]);
  const retryLoad = React.useCallback(() => {
    if (!loadFailed.current) return;
    activeId.current = null;
    setLoadAttempt((n) => n + 1);
  }, []);

  const updateSettings = (next: ChatSettings) => {
    chatSettings.update(next);
    // An error that said what to change is answered by changing it: "Generate a reply" shows.
    if (state.error?.needsChange) clearError();
  };

  /** Where the loaded messages begin in the stored conversation (null: nothing earlier to load). */
  const firstPosition = state.hasEarlier ? (state.messages[0]?.position ?? null) : null;

  /** Loads the page before the first loaded message (scrolling up, or "Load earlier messages"). */
  const loadingEarlierRef = React.useRef(false);
  const loadEarlier = React.useCallback(async () => {
    const id = conversationId;
    if (id === null || firstPosition === null || loadingEarlierRef.current) return;
    loadingEarlierRef.current = true;
    setLoadingEarlier(true);
    try {
      const page = await api.conversation(id, { before: firstPosition, limit: PAGE_SIZE });
      if (activeId.current === id) prepend(page.messages.map(fromApiMessage), page.has_more);
    } catch {
      // The button stays: pressing it (or scrolling up) tries again.
    } finally {
      loadingEarlierRef.current = false;
      setLoadingEarlier(false);
    }
  }, [conversationId, firstPosition, prepend]);

  const runHistory = (history: ChatMessage[] | null) => {
    if (!history || !conversationId) return;
    chatSettings.sending();
    const id = conversationId;
    const before = firstPosition;
    // Not loaded yet, the earlier messages are loaded and sent too (the request carries them all).
    const earlier =
      before === null
        ? undefined
        : async () => (await api.conversation(id, { before })).messages.map(fromApiMessage);
    void run({ conversationId, history, settings: chatSettings.resolved, earlier });
  };

  const send = (text: string) => {
    isDraft.current = false;
    runHistory(
      historyForSend(state.messages, { id: localId("u"), role: "user", content: text, status: "complete" }),
    );
  };
  const regenerate = () => runHistory(historyForRegenerate(state.messages));
  const edit = (id: string, content: string) => runHistory(historyForEdit(state.messages, id, content));
  const switchVersion = (messageId: string) => {
    if (conversationId && !isBusy(state)) void versions.switchTo(conversationId, messageId);
  };

  const rename = async (id: string, title: string) => {
    const updated = await api.rename(id, title);
    updateListItem(id, { title: updated?.title ?? title });
    if (id === activeId.current) setTitle(updated?.title ?? title);
  };

  /** Deletes conversation `id`; resolves to whether it was the open one. */
  const remove = async (id: string): Promise<boolean> => {
    conversations.remove(id);
    try {
      await api.remove(id);
    } catch {
      refreshList();
    }
    return id === activeId.current;
  };

  const listTitle = conversations.items.find((c) => c.id === conversationId)?.title;
  // An existing conversation whose title is not known yet (opening or reloading /c/<id>) has no
  // title rather than "New chat": null, and the header shows a placeholder.
  const opening = routeId !== null && (routeId !== conversationId || loadState.kind === "loading");
  const title: string | null =
    state.title || listTitle || (opening ? null : state.messages.length > 0 ? UNTITLED : "New chat");
  React.useEffect(() => {
    document.title = title && (state.messages.length > 0 || state.title) ? `${title} · OpenChat` : "OpenChat";
  }, [title, state.messages.length, state.title]);

  return {
    conversationId,
    state,
    loadingEarlier,
    loadEarlier,
    busy: isBusy(state),
    loadState,
    title,
    settings: chatSettings.settings,
    resolvedSettings: chatSettings.resolved,
    model: chatSettings.model,
    updateSettings,
    promptForNewChats: chatSettings.promptForNewChats,
    setPromptForNewChats: chatSettings.setPromptForNewChats,
    startNewChat,
    retryLoad,
    send,
    regenerate,
    edit,
    switchVersion,
    stop,
    rename,
    remove,
  };
}
