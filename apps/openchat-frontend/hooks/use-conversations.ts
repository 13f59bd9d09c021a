"use client";

import * as React from "react";

import { useDebouncedValue } from "@/hooks/use-debounced-value";
import { api } from "@/lib/api";
import type { ConversationSummary } from "@/lib/api-client";
import { anyGenerating, GENERATING_POLL_MS, mergeSummaries } from "@/lib/resume";

const PAGE_SIZE = 30;

export function useConversations() {
  const [query, setQuery] = React.useState("");
  const debouncedQuery = useDebouncedValue(query.trim(), 300);
  const [items, setItems] = React.useState<ConversationSummary[]>([]);
  const [cursor, setCursor] = React.useState<string | null>(null);
  const [loading, setLoading] = React.useState(false);
  const [loaded, setLoaded] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [version, setVersion] = React.useState(0);
  const seq = React.useRef(0);
  const loadingMore = React.useRef(false);

  React.useEffect(() => {
    const mySeq = ++seq.current;
    // eslint-disable-next-line react-hooks/set-state-in-effect -- fetching when the query changes
    setLoading(true);
    api
      .conversations({ q: debouncedQuery || undefined, limit: PAGE_SIZE })
      .then((res) => {
        if (mySeq !== seq.current) return;
        setItems(res.conversations);
        setCursor(res.next_cursor);
        setError(null);
      })
      .catch((e: unknown) => {
        if (mySeq !== seq.current) return;
        setError(e instanceof Error ? e.message : "Could not load conversations.");
      })
      .finally(() => {
        if (mySeq !== seq.current) return;
        setLoading(false);
        setLoaded(true);
      });
  }, [debouncedQuery, version]);

  const loadMore = React.useCallback(async () => {
    if (!cursor || loadingMore.current) return;
    loadingMore.current = true;
    const mySeq = seq.current;
    try {
      const res = await api.conversations({ q: debouncedQuery || undefined, limit: PAGE_SIZE, cursor });
      if (mySeq !== seq.current) return;
      setItems((prev) => {
        const seen = new Set(prev.map((c) => c.id));
        return [...prev, ...res.conversations.filter((c) => !seen.has(c.id))];
      });
      setCursor(res.next_cursor);
    } catch (e) {
      if (mySeq === seq.current) setError(e instanceof Error ? e.message : "Could not load more conversations.");
    } finally {
      loadingMore.current = false;
    }
  }, [cursor, debouncedQuery]);

  const refresh = React.useCallback(() => setVersion((v) => v + 1), []);

  // While a reply generates (in this tab or elsewhere), the first page is read again every few
  // seconds, so that its mark shows and clears; the pages loaded beyond it stay.
  const generating = anyGenerating(items);
  React.useEffect(() => {
    if (!generating) return;
    const timer = setInterval(() => {
      const mySeq = seq.current;
      api
        .conversations({ q: debouncedQuery || undefined, limit: PAGE_SIZE })
        .then((res) => {
          if (mySeq === seq.current) setItems((prev) => mergeSummaries(prev, res.conversations));
        })
        .catch(() => {
          // The next tick tries again; the connection monitor reports an unreachable server.
        });
    }, GENERATING_POLL_MS);
    return () => clearInterval(timer);
  }, [generating, debouncedQuery]);

  const update = React.useCallback((id: string, patch: Partial<ConversationSummary>) => {
    setItems((prev) => prev.map((c) => (c.id === id ? { ...c, ...patch } : c)));
  }, []);

  const remove = React.useCallback((id: string) => {
    setItems((prev) => prev.filter((c) => c.id !== id));
  }, []);

  return {
    query,
    setQuery,
    searching: debouncedQuery !== "",
    items,
    hasMore: cursor !== null,
    loading,
    loaded,
    error,
    loadMore,
    refresh,
    update,
    remove,
  };
}
