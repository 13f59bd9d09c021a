"use client";

import { MessagesSquareIcon, PanelLeftIcon, PanelRightIcon, SlidersHorizontalIcon } from "lucide-react";

import { ThemeToggle } from "@/components/theme-toggle";
import { Button } from "@/components/ui/button";
import { UserMenu } from "@/components/user-menu";
import type { Panels } from "@/hooks/use-panels";
import type { ModelOut } from "@/lib/api-client";

type Props = {
  title: string;
  model: ModelOut | null;
  panels: Panels;
};

/** Top bar: panel toggles, the conversation's title, the model in use, theme and account. */
export function ChatHeader({ title, model, panels }: Props) {
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
        <h1 className="truncate text-sm font-medium" data-testid="chat-title">
          {title}
        </h1>
      </div>
      {model && (
        <button
          type="button"
          onClick={toggleRight}
          className="hidden max-w-48 truncate rounded-full border px-2.5 py-0.5 text-xs text-muted-foreground hover:bg-accent md:block"
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
