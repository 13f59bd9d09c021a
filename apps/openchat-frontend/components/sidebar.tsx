"use client";

import { Loader2Icon, SearchIcon, SquarePenIcon, XIcon } from "lucide-react";
import * as React from "react";

import { DeleteDialog, RenameDialog } from "@/components/conversation-dialogs";
import { ConversationItem, UNTITLED } from "@/components/conversation-item";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import type { useConversations } from "@/hooks/use-conversations";
import { useExport } from "@/hooks/use-export";
import type { ConversationSummary } from "@/lib/api-client";
import { groupByDate } from "@/lib/date-groups";

export { UNTITLED };

type Props = {
  conversations: ReturnType<typeof useConversations>;
  activeId: string | null;
  onNewChat: () => void;
  onSelect?: () => void;
  onRename: (id: string, title: string) => Promise<void>;
  onDelete: (id: string) => Promise<void>;
  searchRef?: React.Ref<HTMLInputElement>;
};

export function Sidebar({ conversations, activeId, onNewChat, onSelect, onRename, onDelete, searchRef }: Props) {
  const { items, query, setQuery, loading, loaded, error, hasMore, loadMore, searching } = conversations;
  const groups = React.useMemo(() => groupByDate(items, (c) => c.updated_at), [items]);
  const [renaming, setRenaming] = React.useState<ConversationSummary | null>(null);
  const [deleting, setDeleting] = React.useState<ConversationSummary | null>(null);
  const sentinel = React.useRef<HTMLDivElement>(null);
  const exports = useExport();

  // Infinite scroll: load the next page when the end of the list comes into view.
  React.useEffect(() => {
    const el = sentinel.current;
    if (!el || !hasMore) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) void loadMore();
      },
      { rootMargin: "200px" },
    );
    observer.observe(el);
    return () => observer.disconnect();
  }, [hasMore, loadMore, items.length]);

  return (
    <nav className="flex h-full min-h-0 flex-col" aria-label="Conversations" data-testid="sidebar">
      <div className="flex flex-col gap-2 p-3">
        <Button
          variant="outline"
          className="w-full justify-start gap-2"
          onClick={onNewChat}
          data-testid="new-chat"
          title="New chat (Ctrl+K)"
        >
          <SquarePenIcon aria-hidden />
          New chat
        </Button>
        <div className="relative">
          <SearchIcon className="pointer-events-none absolute top-1/2 left-2.5 size-4 -translate-y-1/2 text-muted-foreground" aria-hidden />
          <Input
            ref={searchRef}
            type="search"
            placeholder="Search conversations"
            aria-label="Search conversations"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            className="pr-8 pl-8 [&::-webkit-search-cancel-button]:hidden"
            data-testid="search-input"
          />
          {query && (
            <button
              type="button"
              className="absolute top-1/2 right-2 -translate-y-1/2 rounded-sm p-0.5 text-muted-foreground hover:text-foreground"
              aria-label="Clear search"
              onClick={() => setQuery("")}
            >
              <XIcon className="size-4" aria-hidden />
            </button>
          )}
        </div>
      </div>
      <div className="min-h-0 flex-1 overflow-y-auto px-2 pb-3" data-testid="conversation-list">
        {error && (
          <p className="px-2 py-3 text-sm text-destructive" role="alert">
            {error}
          </p>
        )}
        {exports.error && (
          <p className="px-2 py-3 text-sm text-destructive" role="alert" data-testid="export-error">
            {exports.error}
          </p>
        )}
        {loaded && items.length === 0 && !error && (
          <p className="px-2 py-6 text-center text-sm text-muted-foreground" data-testid="conversation-empty">
            {searching ? "No conversations match your search." : "No conversations yet."}
          </p>
        )}
        {!loaded && loading && (
          <div className="flex flex-col gap-2 px-2 py-2" aria-label="Loading conversations">
            {[0, 1, 2, 3].map((i) => (
              <div key={i} className="h-7 animate-pulse rounded-md bg-muted" />
            ))}
          </div>
        )}
        {groups.map((group) => (
          <section key={group.key} className="mb-3" aria-labelledby={`group-${group.key}`}>
            <h2 id={`group-${group.key}`} className="px-2 pt-2 pb-1 text-xs font-medium text-muted-foreground">
              {group.label}
            </h2>
            <ul className="flex flex-col gap-0.5">
              {group.items.map((c) => (
                <ConversationItem
                  key={c.id}
                  conversation={c}
                  active={c.id === activeId}
                  onSelect={onSelect}
                  onRename={() => setRenaming(c)}
                  onDelete={() => setDeleting(c)}
                  onExport={(format) => void exports.exportConversation(c, format)}
                />
              ))}
            </ul>
          </section>
        ))}
        {hasMore && (
          <div ref={sentinel} className="flex justify-center py-3" data-testid="load-more">
            <Loader2Icon className="size-4 animate-spin text-muted-foreground" aria-label="Loading more" />
          </div>
        )}
      </div>
      <RenameDialog
        open={renaming !== null}
        initialTitle={renaming?.title || ""}
        onOpenChange={(open) => !open && setRenaming(null)}
        onRename={async (title) => {
          if (renaming) await onRename(renaming.id, title);
        }}
      />
      <DeleteDialog
        open={deleting !== null}
        title={deleting?.title || UNTITLED}
        onOpenChange={(open) => !open && setDeleting(null)}
        onDelete={() => {
          if (deleting) void onDelete(deleting.id);
          setDeleting(null);
        }}
      />
    </nav>
  );
}
