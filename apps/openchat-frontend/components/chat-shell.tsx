"use client";

import { Loader2Icon, MessagesSquareIcon, PanelLeftIcon, PanelRightIcon, SlidersHorizontalIcon } from "lucide-react";
import { usePathname, useRouter } from "next/navigation";
import * as React from "react";

import { loginHref, useAuth } from "@/components/auth-provider";
import { Composer, type ComposerHandle } from "@/components/composer";
import { EmptyState } from "@/components/empty-state";
import { preloadMarkdown } from "@/components/message";
import { Messages } from "@/components/messages";
import { SettingsPanel } from "@/components/settings-panel";
import { Sidebar, UNTITLED } from "@/components/sidebar";
import { ThemeToggle } from "@/components/theme-toggle";
import { Button } from "@/components/ui/button";
import { Sheet, SheetContent, SheetDescription, SheetTitle } from "@/components/ui/sheet";
import { UserMenu } from "@/components/user-menu";
import { useChat } from "@/hooks/use-chat";
import { useConversations } from "@/hooks/use-conversations";
import { useMediaQuery } from "@/hooks/use-media-query";
import { useModels } from "@/hooks/use-models";
import { api, ApiError } from "@/lib/api";
import {
  fromApiMessage,
  historyForEdit,
  historyForRegenerate,
  historyForSend,
  isBusy,
  type ChatMessage,
} from "@/lib/chat-state";
import { forgetSettings, loadDefaultSettings, loadSettings, saveSettings, type ChatSettings } from "@/lib/settings";
import { cn, localId, newConversationId } from "@/lib/utils";

const LAYOUT_KEY = "openchat:layout";

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

type LoadState = { kind: "ready" } | { kind: "loading" } | { kind: "notfound" } | { kind: "error"; message: string };

function usePanelState() {
  const [panels, setPanels] = React.useState<{ left: boolean; right: boolean }>(() => {
    if (typeof window === "undefined") return { left: true, right: true };
    try {
      const raw = window.localStorage.getItem(LAYOUT_KEY);
      if (raw) return { left: true, right: true, ...(JSON.parse(raw) as object) };
    } catch {
      // ignore
    }
    return { left: true, right: true };
  });
  React.useEffect(() => {
    try {
      window.localStorage.setItem(LAYOUT_KEY, JSON.stringify(panels));
    } catch {
      // ignore
    }
  }, [panels]);
  return [panels, setPanels] as const;
}

export function ChatShell() {
  const auth = useAuth();
  if (auth.status === "unavailable") {
    return (
      <div className="flex h-dvh flex-col items-center justify-center gap-3 px-4 text-center" role="alert" data-testid="server-unavailable">
        <p className="font-medium">The OpenChat server can&apos;t be reached right now.</p>
        <p className="text-sm text-muted-foreground">Check that the backend is running, then try again.</p>
        <Button onClick={auth.retry}>Try again</Button>
      </div>
    );
  }
  if (auth.status !== "authenticated") {
    return <ShellSkeleton redirect={auth.status === "anonymous"} firstRun={auth.hasUsers === false} />;
  }
  return <ChatApp key={auth.user?.id ?? "user"} />;
}

function ShellSkeleton({ redirect, firstRun }: { redirect: boolean; firstRun: boolean }) {
  const router = useRouter();
  const pathname = usePathname();
  React.useEffect(() => {
    // A new install has no account to log in to: open on sign-up.
    if (redirect) router.replace(loginHref(pathname + window.location.search, firstRun ? "/signup" : "/login"));
  }, [redirect, firstRun, pathname, router]);
  return (
    <div className="flex h-dvh items-center justify-center" data-testid="app-loading">
      <Loader2Icon className="size-6 animate-spin text-muted-foreground" aria-label="Loading OpenChat" />
    </div>
  );
}

function ChatApp() {
  const router = useRouter();
  const pathname = usePathname();
  const routeId = routeConversationId(pathname);
  const isDesktop = useMediaQuery("(min-width: 1024px)", true);
  const [panels, setPanels] = usePanelState();
  const [leftSheet, setLeftSheet] = React.useState(false);
  const [rightSheet, setRightSheet] = React.useState(false);

  const conversations = useConversations(true);
  const { models, defaultModel, error: modelsError } = useModels(true);
  const composerRef = React.useRef<ComposerHandle>(null);
  const searchRef = React.useRef<HTMLInputElement>(null);

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
  const { state, run, stop, load, reset } = chat;

  // Fetch the Markdown renderer once the app is idle, before the first reply needs it.
  React.useEffect(() => {
    const w = window as Window & { requestIdleCallback?: (cb: () => void) => number };
    if (w.requestIdleCallback) w.requestIdleCallback(preloadMarkdown);
    else setTimeout(preloadMarkdown, 500);
  }, []);
  const busy = isBusy(state);

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

  const newChat = React.useCallback(() => {
    startNewChat();
    setLeftSheet(false);
    if (window.location.pathname !== "/") router.push("/");
    requestAnimationFrame(() => composerRef.current?.focus());
  }, [router, startNewChat]);

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

  const modelName = React.useCallback(
    (id: string) => models.find((m) => m.id === id)?.name || id,
    [models],
  );

  // Keyboard shortcuts: Ctrl/Cmd+K new chat, Ctrl/Cmd+/ focus composer, Esc stops.
  React.useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      if (mod && e.key.toLowerCase() === "k") {
        e.preventDefault();
        newChat();
      } else if (mod && e.key === "/") {
        e.preventDefault();
        composerRef.current?.focus();
      } else if (e.key === "Escape" && !e.defaultPrevented && busy) {
        if (document.querySelector("[role=dialog],[role=alertdialog],[role=menu],[role=listbox]")) return;
        e.preventDefault();
        stop();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [newChat, busy, stop]);

  const renameConversation = async (id: string, title: string) => {
    const updated = await api.rename(id, title);
    updateListItem(id, { title: updated?.title ?? title });
    if (id === activeId.current) chat.setTitle(updated?.title ?? title);
  };

  const deleteConversation = async (id: string) => {
    conversations.remove(id);
    forgetSettings(id);
    try {
      await api.remove(id);
    } catch {
      refreshList();
    }
    if (id === activeId.current) newChat();
  };

  const listTitle = conversations.items.find((c) => c.id === conversationId)?.title;
  const title = state.title || listTitle || (state.messages.length > 0 ? UNTITLED : "New chat");
  React.useEffect(() => {
    document.title = state.messages.length > 0 || state.title ? `${title} · OpenChat` : "OpenChat";
  }, [title, state.messages.length, state.title]);

  const currentModel = models.find((m) => m.id === requestSettings.model) ?? defaultModel;

  // Screen readers hear when a reply starts and the whole reply when it ends.
  const last = state.messages[state.messages.length - 1];
  const announcement =
    state.status === "submitting" || state.status === "streaming"
      ? "Assistant is replying…"
      : state.error
        ? `Error: ${state.error.message}`
        : last?.role === "ai" && last.id.startsWith("ai-") && last.content
          ? `${last.status === "cancelled" ? "Reply stopped" : "Reply"}: ${last.content}`
          : "";

  const toggleLeft = () => (isDesktop ? setPanels((p) => ({ ...p, left: !p.left })) : setLeftSheet(true));
  const toggleRight = () => (isDesktop ? setPanels((p) => ({ ...p, right: !p.right })) : setRightSheet(true));

  const sidebar = (
    <Sidebar
      conversations={conversations}
      activeId={conversationId}
      onNewChat={newChat}
      onSelect={() => setLeftSheet(false)}
      onRename={renameConversation}
      onDelete={deleteConversation}
      searchRef={searchRef}
    />
  );
  const settingsPanel = (
    <SettingsPanel
      settings={settings}
      onChange={updateSettings}
      models={models}
      defaultModel={defaultModel}
      modelsError={modelsError}
    />
  );

  return (
    <div className="flex h-dvh flex-col overflow-hidden" data-testid="chat-app">
      <header className="flex h-12 shrink-0 items-center gap-1 border-b px-2">
        <Button
          variant="ghost"
          size="icon-sm"
          onClick={toggleLeft}
          aria-label={isDesktop ? (panels.left ? "Hide conversations" : "Show conversations") : "Open conversations"}
          aria-expanded={isDesktop ? panels.left : leftSheet}
          data-testid="toggle-sidebar"
        >
          <PanelLeftIcon aria-hidden />
        </Button>
        <div className="flex min-w-0 flex-1 items-center gap-2 px-1">
          <MessagesSquareIcon className="hidden size-4 shrink-0 text-brand sm:block" aria-hidden />
          <span className="hidden text-sm font-semibold sm:inline">OpenChat</span>
          <span className="hidden text-muted-foreground sm:inline" aria-hidden>
            /
          </span>
          <h1 className="truncate text-sm font-medium" data-testid="chat-title">
            {title}
          </h1>
        </div>
        {currentModel && (
          <button
            type="button"
            onClick={toggleRight}
            className="hidden max-w-48 truncate rounded-full border px-2.5 py-0.5 text-xs text-muted-foreground hover:bg-accent md:block"
            title="Model settings"
            data-testid="header-model"
          >
            {currentModel.name || currentModel.id}
          </button>
        )}
        <ThemeToggle />
        <Button
          variant="ghost"
          size="icon-sm"
          onClick={toggleRight}
          aria-label={isDesktop ? (panels.right ? "Hide settings" : "Show settings") : "Open settings"}
          aria-expanded={isDesktop ? panels.right : rightSheet}
          data-testid="toggle-settings"
        >
          {isDesktop ? <PanelRightIcon aria-hidden /> : <SlidersHorizontalIcon aria-hidden />}
        </Button>
        <UserMenu />
      </header>

      <div className="flex min-h-0 flex-1">
        {isDesktop && panels.left && <div className="flex w-72 shrink-0 flex-col border-r bg-sidebar">{sidebar}</div>}

        <main className="flex min-w-0 flex-1 flex-col" aria-label="Chat">
          {loadState.kind === "loading" ? (
            <div className="flex flex-1 items-center justify-center" data-testid="conversation-loading">
              <Loader2Icon className="size-5 animate-spin text-muted-foreground" aria-label="Loading conversation" />
            </div>
          ) : loadState.kind === "notfound" || loadState.kind === "error" ? (
            <div className="flex flex-1 flex-col items-center justify-center gap-3 px-4 text-center" data-testid="conversation-missing">
              <p className="font-medium">
                {loadState.kind === "notfound" ? "This conversation doesn't exist or was deleted." : loadState.message}
              </p>
              <Button onClick={newChat}>Start a new chat</Button>
            </div>
          ) : state.messages.length === 0 ? (
            <div className="flex min-h-0 flex-1 overflow-y-auto">
              <EmptyState onPick={send} modelName={currentModel?.name} />
            </div>
          ) : (
            <Messages
              conversationId={conversationId}
              state={state}
              modelName={modelName}
              onRegenerate={regenerate}
              onEdit={edit}
              onRetry={regenerate}
              onCancelRetry={stop}
            />
          )}
          <div className={cn("shrink-0 px-3 pt-1 pb-3 sm:px-4", loadState.kind !== "ready" && "invisible")}>
            <Composer ref={composerRef} busy={busy} onSend={send} onStop={stop} />
          </div>
          <div aria-live="polite" aria-atomic="true" className="sr-only" data-testid="live-region">
            {announcement}
          </div>
        </main>

        {isDesktop && panels.right && <div className="flex w-80 shrink-0 flex-col border-l bg-sidebar">{settingsPanel}</div>}
      </div>

      {!isDesktop && (
        <>
          <Sheet open={leftSheet} onOpenChange={setLeftSheet}>
            <SheetContent side="left" className="bg-sidebar pt-8" data-testid="sidebar-sheet">
              <SheetTitle className="sr-only">Conversations</SheetTitle>
              <SheetDescription className="sr-only">Open, search, rename or delete conversations.</SheetDescription>
              {sidebar}
            </SheetContent>
          </Sheet>
          <Sheet open={rightSheet} onOpenChange={setRightSheet}>
            <SheetContent side="right" className="bg-sidebar pt-6" data-testid="settings-sheet">
              <SheetTitle className="sr-only">Chat settings</SheetTitle>
              <SheetDescription className="sr-only">Model, system prompt and sampling options.</SheetDescription>
              {settingsPanel}
            </SheetContent>
          </Sheet>
        </>
      )}
    </div>
  );
}
