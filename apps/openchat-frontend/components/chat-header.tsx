"use client";

import { MessagesSquareIcon, PanelLeftIcon, PanelRightIcon, SlidersHorizontalIcon, SquarePenIcon } from "lucide-react";

import { ThemeToggle } from "@/components/theme-toggle";
import { Button } from "@/components/ui/button";
import { UserMenu } from "@/components/user-menu";
import type { Panels } from "@/hooks/use-panels";
import type { ModelOut } from "@/lib/api-client";

type Props = {
  /** null while an existing conversation's title is not known yet: a placeholder shows. */
  title: string | null;
  model: ModelOut | null;
  panels: Panels;
  onNewChat: () => void;
};

/**
 * Top bar: panel toggles, the conversation's title, the model in use, theme and account; and
 * New chat whenever the conversations panel (which has its own) is not on screen, as on phones.
 */
export function ChatHeader({ title, model, panels, onNewChat }: Props) {
  const { isDesktop, docked, leftOpen, rightOpen, toggleLeft, toggleRight } = panels;
  return (
    <header className="flex h-12 shrink-0 items-center gap-1 border-b px-2">
      <Button
        variant="ghost"
        size="icon-sm"
        onClick={toggleLeft}
        aria-label={isDesktop ? (docked.left ? "Hide conversations" : "Show conversations") : "Open conversations"}
        aria-expanded={leftOpen}
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
        <h1 className="min-w-0 truncate text-sm font-medium" data-testid="chat-title" aria-busy={title === null}>
          {title ?? (
            <>
              <span className="block h-4 w-32 animate-pulse rounded bg-muted" aria-hidden />
              <span className="sr-only">Loading conversation</span>
            </>
          )}
        </h1>
      </div>
      {!(isDesktop && docked.left) && (
        <Button variant="ghost" size="icon-sm" onClick={onNewChat} aria-label="New chat" title="New chat" data-testid="header-new-chat">
          <SquarePenIcon aria-hidden />
        </Button>
      )}
      {model && (
        // The whole name, never cut: the title gives way instead.
        <button
          type="button"
          onClick={toggleRight}
          className="hidden shrink-0 rounded-full border px-2.5 py-0.5 text-xs whitespace-nowrap text-muted-foreground hover:bg-accent md:block"
          title="Model settings"
          data-testid="header-model"
        >
          {model.name || model.id}
        </button>
      )}
      <ThemeToggle />
      <Button
        variant="ghost"
        size="icon-sm"
        onClick={toggleRight}
        aria-label={isDesktop ? (docked.right ? "Hide settings" : "Show settings") : "Open settings"}
        aria-expanded={rightOpen}
        data-testid="toggle-settings"
      >
        {isDesktop ? <PanelRightIcon aria-hidden /> : <SlidersHorizontalIcon aria-hidden />}
      </Button>
      <UserMenu />
    </header>
  );
}
