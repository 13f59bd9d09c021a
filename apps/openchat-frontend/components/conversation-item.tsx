"use client";

import { DownloadIcon, Loader2Icon, MoreHorizontalIcon, PencilIcon, Trash2Icon } from "lucide-react";
import Link from "next/link";

import { Button } from "@/components/ui/button";
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuSub,
  DropdownMenuSubContent,
  DropdownMenuSubTrigger,
  DropdownMenuTrigger,
} from "@/components/ui/dropdown-menu";
import type { ConversationSummary } from "@/lib/api-client";
import type { ExportFormat } from "@/lib/transfer";
import { cn } from "@/lib/utils";

export const UNTITLED = "New conversation";

type Props = {
  conversation: ConversationSummary;
  active: boolean;
  onSelect?: () => void;
  onRename: () => void;
  onDelete: () => void;
  onExport: (format: ExportFormat) => void;
};

/** A conversation in the sidebar: its link, and its menu (Rename, Export, Delete). */
export function ConversationItem({ conversation, active, onSelect, onRename, onDelete, onExport }: Props) {
  const title = conversation.title || UNTITLED;
  return (
    <li
      className={cn(
        "group/item relative flex items-center rounded-md text-sm transition-colors hover:bg-accent",
        active && "bg-accent font-medium",
      )}
      data-testid="conversation-item"
      data-id={conversation.id}
    >
      <Link
        href={`/c/${encodeURIComponent(conversation.id)}`}
        className="min-w-0 flex-1 truncate rounded-md px-2 py-1.5 pr-8 outline-none focus-visible:ring-2 focus-visible:ring-ring"
        aria-current={active ? "page" : undefined}
        onClick={onSelect}
        title={title}
        data-testid="conversation-link"
      >
        {conversation.generating && (
          <Loader2Icon
            className="mr-1.5 inline size-3.5 animate-spin align-[-0.2em] text-muted-foreground"
            role="img"
            aria-label="Reply being written"
            data-testid="conversation-generating"
          />
        )}
        {title}
      </Link>
      <DropdownMenu>
        <DropdownMenuTrigger asChild>
          <Button
            variant="ghost"
            size="icon-xs"
            className="absolute right-0.5 text-muted-foreground opacity-100 hover:text-foreground focus-visible:opacity-100 data-[state=open]:opacity-100 lg:opacity-0 lg:group-hover/item:opacity-100"
            aria-label={`Options for ${title}`}
            data-testid="conversation-menu"
          >
            <MoreHorizontalIcon aria-hidden />
          </Button>
        </DropdownMenuTrigger>
        <DropdownMenuContent align="start">
          <DropdownMenuItem onSelect={onRename} data-testid="rename-conversation">
            <PencilIcon aria-hidden /> Rename
          </DropdownMenuItem>
          <DropdownMenuSub>
            <DropdownMenuSubTrigger data-testid="export-conversation">
              <DownloadIcon aria-hidden /> Export
            </DropdownMenuSubTrigger>
            <DropdownMenuSubContent>
              <DropdownMenuItem onSelect={() => onExport("openchat")} data-testid="export-json">
                JSON (every version)
              </DropdownMenuItem>
              <DropdownMenuItem onSelect={() => onExport("markdown")} data-testid="export-markdown">
                Markdown
              </DropdownMenuItem>
            </DropdownMenuSubContent>
          </DropdownMenuSub>
          <DropdownMenuItem variant="destructive" onSelect={onDelete} data-testid="delete-conversation">
            <Trash2Icon aria-hidden /> Delete
          </DropdownMenuItem>
        </DropdownMenuContent>
      </DropdownMenu>
    </li>
  );
}
