"use client";

import { Loader2Icon } from "lucide-react";
import { usePathname, useRouter } from "next/navigation";
import * as React from "react";

import { loginHref, useAuth } from "@/components/auth-provider";
import { ChatHeader } from "@/components/chat-header";
import { Composer, type ComposerHandle } from "@/components/composer";
import { EmptyState } from "@/components/empty-state";
import { preloadMarkdown } from "@/components/message";
import { Messages } from "@/components/messages";
import { SettingsPanel } from "@/components/settings-panel";
import { Sidebar } from "@/components/sidebar";
import { Button } from "@/components/ui/button";
import { Sheet, SheetContent, SheetDescription, SheetTitle } from "@/components/ui/sheet";
import { useActiveChat } from "@/hooks/use-active-chat";
import { useConversations } from "@/hooks/use-conversations";
import { useMediaQuery } from "@/hooks/use-media-query";
import { useModels } from "@/hooks/use-models";
import { usePanels } from "@/hooks/use-panels";
import { useShortcuts } from "@/hooks/use-shortcuts";
import type { ChatState } from "@/lib/chat-state";
import { cn } from "@/lib/utils";

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
  const { models, defaultModel, error: modelsError } = useModels();
  const active = useActiveChat({ conversations, models });
  const { state, startNewChat, stop } = active;
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

  const modelName = React.useCallback((id: string) => models.find((m) => m.id === id)?.name || id, [models]);
  const currentModel = models.find((m) => m.id === active.requestSettings.model) ?? defaultModel;
  const { loadState } = active;

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
      onChange={active.updateSettings}
      models={models}
      defaultModel={defaultModel}
      modelsError={modelsError}
    />
  );

  return (
    <div className="flex h-dvh flex-col overflow-hidden" data-testid="chat-app">
      <ChatHeader title={active.title} model={currentModel} panels={panels} />

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
              onRetry={active.regenerate}
              onCancelRetry={stop}
            />
          )}
          <div className={cn("shrink-0 px-3 pt-1 pb-3 sm:px-4", loadState.kind !== "ready" && "invisible")}>
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
