"use client";

import { Loader2Icon } from "lucide-react";
import { usePathname, useRouter } from "next/navigation";
import * as React from "react";

import { loginHref, useAuth } from "@/components/auth-provider";
import { ChatHeader } from "@/components/chat-header";
import { Composer, type ComposerHandle } from "@/components/composer";
import { ConnectionBanner, ServerUnavailable } from "@/components/connection-status";
import { EmptyState } from "@/components/empty-state";
import { preloadMarkdown } from "@/components/message";
import { Messages } from "@/components/messages";
import { SettingsPanel, type SettingField, type SettingFocus } from "@/components/settings-panel";
import { Sidebar } from "@/components/sidebar";
import { SystemPromptChip } from "@/components/system-prompt-chip";
import { Button } from "@/components/ui/button";
import { Sheet, SheetContent, SheetDescription, SheetTitle } from "@/components/ui/sheet";
import { useActiveChat } from "@/hooks/use-active-chat";
import { useConversations } from "@/hooks/use-conversations";
import { useMediaQuery } from "@/hooks/use-media-query";
import { useModels } from "@/hooks/use-models";
import { usePanels } from "@/hooks/use-panels";
import { useShortcuts } from "@/hooks/use-shortcuts";
import type { ChatState } from "@/lib/chat-state";
import { onReconnect } from "@/lib/connection";
import { cn } from "@/lib/utils";

export function ChatShell() {
  const auth = useAuth();
  if (auth.status === "unavailable") return <ServerUnavailable onRetry={auth.retry} />;
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

/** What screen readers hear: that a reply started, and the whole reply when it ends. */
function announcementFor(state: ChatState): string {
  const last = state.messages[state.messages.length - 1];
  if (state.status === "submitting" || state.status === "streaming") return "Assistant is replying…";
  if (state.error) return `Error: ${state.error.message}`;
  if (last?.role === "ai" && last.id.startsWith("ai-") && last.content) {
    return `${last.status === "cancelled" ? "Reply stopped" : "Reply"}: ${last.content}`;
  }
  return "";
}

function ChatApp() {
  const router = useRouter();
  const isDesktop = useMediaQuery("(min-width: 1024px)", true);
  const panels = usePanels(isDesktop);
  const { setLeftSheet } = panels;
  const conversations = useConversations();
  const { models, error: modelsError, reload: reloadModels } = useModels();
  const active = useActiveChat({ conversations, models });
  const { state, startNewChat, stop, retryLoad } = active;
  const composerRef = React.useRef<ComposerHandle>(null);
  const searchRef = React.useRef<HTMLInputElement>(null);

  // Fetch the Markdown renderer once the app is idle, before the first reply needs it.
  React.useEffect(() => {
    const w = window as Window & { requestIdleCallback?: (cb: () => void) => number };
    if (w.requestIdleCallback) w.requestIdleCallback(preloadMarkdown);
    else setTimeout(preloadMarkdown, 500);
  }, []);

  const newChat = React.useCallback(() => {
    startNewChat();
    setLeftSheet(false);
    if (window.location.pathname !== "/") router.push("/");
    requestAnimationFrame(() => composerRef.current?.focus());
  }, [router, startNewChat, setLeftSheet]);
  const focusComposer = React.useCallback(() => composerRef.current?.focus(), []);
  useShortcuts({ onNewChat: newChat, onFocusComposer: focusComposer, onStop: stop, busy: active.busy });

  // The composer takes the focus when a chat opens (on load, from the list, New chat), except on
  // touch screens, where focusing it would pop up the on-screen keyboard.
  const openedId = active.loadState.kind === "ready" ? active.conversationId : null;
  React.useEffect(() => {
    if (openedId && !window.matchMedia("(pointer: coarse)").matches) composerRef.current?.focus();
  }, [openedId]);

  // What failed while the server was unreachable loads again once it answers.
  const { refresh: refreshConversations } = conversations;
  React.useEffect(
    () =>
      onReconnect(() => {
        refreshConversations();
        void reloadModels();
        retryLoad();
      }),
    [refreshConversations, reloadModels, retryLoad],
  );

  const modelName = React.useCallback((id: string) => models.find((m) => m.id === id)?.name || id, [models]);
  const currentModel = active.model;
  const { loadState } = active;
  // The system prompt chip and errors that name a setting open the settings there.
  const [settingFocus, setSettingFocus] = React.useState<SettingFocus | null>(null);
  const clearSettingFocus = React.useCallback(() => setSettingFocus(null), []);
  const openSettings = (field: SettingField) => {
    panels.openRight();
    setSettingFocus({ field });
  };

  const sidebar = (
    <Sidebar
      conversations={conversations}
      activeId={active.conversationId}
      onNewChat={newChat}
      onSelect={() => setLeftSheet(false)}
      onRename={active.rename}
      onDelete={async (id) => {
        if (await active.remove(id)) newChat();
      }}
      searchRef={searchRef}
    />
  );
  const settingsPanel = (
    <SettingsPanel
      settings={active.settings}
      resolved={active.resolvedSettings}
      onChange={active.updateSettings}
      models={models}
      model={currentModel}
      modelsError={modelsError}
      promptForNewChats={active.promptForNewChats}
      onPromptForNewChats={active.setPromptForNewChats}
      focus={settingFocus}
      onFocused={clearSettingFocus}
      onImported={refreshConversations}
    />
  );

  return (
    <div className="flex h-dvh flex-col overflow-hidden" data-testid="chat-app">
      <a
        href="#composer"
        onClick={(e) => {
          e.preventDefault();
          focusComposer();
        }}
        className="sr-only rounded-md bg-background px-3 py-2 text-sm font-medium shadow-md ring-2 ring-ring focus:not-sr-only focus:fixed focus:top-2 focus:left-2 focus:z-50"
        data-testid="skip-to-composer"
      >
        Skip to message box
      </a>
      <ChatHeader title={active.title} model={currentModel} panels={panels} onNewChat={newChat} />
      <ConnectionBanner />

      <div className="flex min-h-0 flex-1">
        {isDesktop && panels.docked.left && (
          <div className="flex w-72 shrink-0 flex-col border-r bg-sidebar">{sidebar}</div>
        )}

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
              <EmptyState onPick={active.send} modelName={currentModel?.name} />
            </div>
          ) : (
            <Messages
              conversationId={active.conversationId}
              state={state}
              modelName={modelName}
              onRegenerate={active.regenerate}
              onEdit={active.edit}
              onSwitchVersion={active.switchVersion}
              onRetry={active.regenerate}
              onCancelRetry={stop}
              onOpenSettings={openSettings}
              loadingEarlier={active.loadingEarlier}
              onLoadEarlier={() => void active.loadEarlier()}
            />
          )}
          <div className={cn("shrink-0 px-3 pt-1 pb-3 sm:px-4", loadState.kind !== "ready" && "invisible")}>
            {active.settings.prompt.trim() && (
              <div className="mx-auto mb-1.5 flex w-full max-w-3xl">
                <SystemPromptChip prompt={active.settings.prompt} onClick={() => openSettings("prompt")} />
              </div>
            )}
            <Composer ref={composerRef} busy={active.busy} onSend={active.send} onStop={stop} />
          </div>
          <div aria-live="polite" aria-atomic="true" className="sr-only" data-testid="live-region">
            {announcementFor(state)}
          </div>
        </main>

        {isDesktop && panels.docked.right && (
          <div className="flex w-80 shrink-0 flex-col border-l bg-sidebar">{settingsPanel}</div>
        )}
      </div>

      {!isDesktop && (
        <>
          <Sheet open={panels.leftSheet} onOpenChange={setLeftSheet}>
            <SheetContent side="left" className="bg-sidebar pt-8" data-testid="sidebar-sheet">
              <SheetTitle className="sr-only">Conversations</SheetTitle>
              <SheetDescription className="sr-only">Open, search, rename or delete conversations.</SheetDescription>
              {sidebar}
            </SheetContent>
          </Sheet>
          <Sheet open={panels.rightSheet} onOpenChange={panels.setRightSheet}>
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
