"use client";

import * as React from "react";

import { api, ApiError } from "@/lib/api";
import { chatReducer, chatRequest, initialChatState, needsChange, type ChatAction, type ChatMessage } from "@/lib/chat-state";
import { checkConnection } from "@/lib/connection";
import { readChatEvents, type ChatEvent } from "@/lib/ndjson";
import { isOtherReply, reattachDelayMs } from "@/lib/resume";
import type { ResolvedSettings } from "@/lib/settings";
import { localId } from "@/lib/utils";

type Callbacks = {
  /** A stream began (the conversation now exists on the server). */
  onStart?: (conversationId: string) => void;
  onEvent?: (conversationId: string, event: ChatEvent) => void;
  /** The request finished one way or another. */
  onSettled?: (conversationId: string) => void;
};

type Request = {
  conversationId: string;
  history: ChatMessage[];
  settings: ResolvedSettings;
  /**
   * The conversation's stored messages before `history`, not loaded yet (a long conversation
   * opens on its latest page). A chat request carries the whole conversation, so they are
   * loaded first: sent without them, the server would take the shorter history as an edit.
   */
  earlier?: () => Promise<ChatMessage[]>;
};

/**
 * How attaching to a generating reply went: `followed` (read to its end, or left), `ended`
 * (nothing generates any more: 204), `other` (another reply than the one shown generates),
 * `failed` (the server could not be reached or refused).
 */
export type AttachResult = "followed" | "ended" | "other" | "failed";

/** The stream this tab follows: its conversation, and whether Stop was pressed (see `stop`). */
type Following = { conversationId: string; controller: AbortController; stopRequested: boolean };

/** Resolves after `ms` (true), or as soon as `signal` aborts (false). */
function wait(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", aborted);
      resolve(true);
    }, ms);
    const aborted = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener("abort", aborted, { once: true });
  });
}

/** What the stream helpers below work on: the hook's reducer, and what it follows. */
type Streams = {
  dispatch: React.Dispatch<ChatAction>;
  following: React.RefObject<Following | null>;
  retryTimer: React.RefObject<ReturnType<typeof setTimeout> | null>;
  callbacks: React.RefObject<Callbacks>;
};

function clearRetry(s: Streams) {
  if (s.retryTimer.current) clearTimeout(s.retryTimer.current);
  s.retryTimer.current = null;
}

/** Stops reading the stream followed (the server goes on generating: it was resumable). */
function drop(s: Streams) {
  s.following.current?.controller.abort();
  s.following.current = null;
}

function follow(s: Streams, conversationId: string): Following {
  drop(s);
  clearRetry(s);
  const current = { conversationId, controller: new AbortController(), stopRequested: false };
  s.following.current = current;
  return current;
}

function unfollow(s: Streams, current: Following) {
  if (s.following.current === current) s.following.current = null;
}

/** Stops the generating reply on the server; its stream then ends with `end` (cancelled). */
function stopOnServer(s: Streams, current: Following) {
  api.stop(current.conversationId).catch(() => {
    // Not stopped there: at least this tab stops following it, as before resumable replies.
    if (s.following.current !== current) return;
    drop(s);
    s.dispatch({ type: "stop" });
  });
}

/**
 * Reads a chat stream into the state until it ends, `current` is dropped or the connection fails.
 * `accept`, when given, sees the first event and may refuse the stream (then nothing is shown).
 */
async function read(
  s: Streams,
  current: Following,
  body: ReadableStream<Uint8Array>,
  accept?: (first: ChatEvent) => boolean,
) {
  const { conversationId, controller } = current;
  let first = true;
  try {
    for await (const event of readChatEvents(body, controller.signal)) {
      if (controller.signal.aborted) break;
      if (first && accept && !accept(event)) return;
      first = false;
      s.dispatch({ type: "event", event });
      if (event.type === "start") {
        // Stop was pressed before the reply started: the server may not have known it yet.
        if (current.stopRequested) stopOnServer(s, current);
        if (!accept) s.callbacks.current.onStart?.(conversationId);
      }
      s.callbacks.current.onEvent?.(conversationId, event);
    }
    if (!controller.signal.aborted) s.dispatch({ type: "streamClosed" });
  } catch {
    if (!controller.signal.aborted) {
      s.dispatch({
        type: "fail",
        error: { message: "The connection was lost while the reply was streaming.", code: "network" },
      });
      // Was it the server? If it no longer answers, the app shows offline until it does.
      void checkConnection();
    }
  } finally {
    unfollow(s, current);
    s.callbacks.current.onSettled?.(conversationId);
  }
}

export function useChat(callbacks: Callbacks = {}) {
  const [state, dispatch] = React.useReducer(chatReducer, initialChatState);
  const following = React.useRef<Following | null>(null);
  const retryTimer = React.useRef<ReturnType<typeof setTimeout> | null>(null);
  const callbacksRef = React.useRef(callbacks);
  React.useEffect(() => {
    callbacksRef.current = callbacks;
  });
  const runRef = React.useRef<((request: Request) => Promise<void>) | null>(null);

  const streams = React.useMemo<Streams>(
    () => ({ dispatch, following, retryTimer, callbacks: callbacksRef }),
    [],
  );

  const run = React.useCallback(async (request: Request): Promise<void> => {
    const { conversationId, settings, earlier } = request;
    const current = follow(streams, conversationId);
    const { controller } = current;
    let { history } = request;
    let retried = request; // what a retry after a 429 sends
    dispatch({ type: "submit", history, assistantId: localId("ai") });
    if (earlier) {
      try {
        const older = await earlier();
        if (controller.signal.aborted) return;
        dispatch({ type: "prepend", messages: older, hasEarlier: false });
        history = [...older, ...history];
        retried = { ...request, history, earlier: undefined };
      } catch {
        if (controller.signal.aborted) return;
        dispatch({
          type: "fail",
          error: { message: "Could not load the earlier messages of this conversation to send them. Retry.", code: "network" },
        });
        callbacksRef.current.onSettled?.(conversationId);
        return;
      }
      if (current.stopRequested) {
        // Stopped while the earlier messages loaded: nothing was sent.
        unfollow(streams, current);
        dispatch({ type: "stop" });
        callbacksRef.current.onSettled?.(conversationId);
        return;
      }
    }

    let body: ReadableStream<Uint8Array> | null;
    try {
      body = await api.chat(chatRequest(conversationId, history, settings), controller.signal);
    } catch (error) {
      if (controller.signal.aborted) return;
      unfollow(streams, current);
      if (!(error instanceof ApiError)) {
        dispatch({
          type: "fail",
          error: { message: "Could not reach the OpenChat server. Check your connection and retry.", code: "network" },
        });
        callbacksRef.current.onSettled?.(conversationId);
        return;
      }
      if (error.status === 429) {
        const seconds = Math.max(1, Math.min(120, error.retryAfter ?? 5));
        dispatch({ type: "busy", retryAt: Date.now() + seconds * 1000 });
        retryTimer.current = setTimeout(() => {
          retryTimer.current = null;
          void runRef.current?.(retried);
        }, seconds * 1000);
        return;
      }
      dispatch({
        type: "fail",
        error: { message: error.message, code: error.code, needsChange: needsChange(error.status) },
      });
      callbacksRef.current.onSettled?.(conversationId);
      return;
    }
    if (!body) {
      dispatch({ type: "streamClosed" });
      callbacksRef.current.onSettled?.(conversationId);
      return;
    }
    await read(streams, current, body);
  }, [streams]);

  React.useEffect(() => {
    runRef.current = run;
  }, [run]);

  /**
   * Follows the reply the open conversation's server is generating (its last message, stored
   * `generating`): the stored text stays shown until the replay has caught up, then it streams.
   * A reply still starting (its prompt read, or waiting for the model) cannot be followed yet
   * (204): it is asked again a little later, as long as `stillGenerating` says it is stored so.
   */
  const attach = React.useCallback(
    async (conversationId: string, replyId: string | null, stillGenerating: () => Promise<boolean>): Promise<AttachResult> => {
      const current = follow(streams, conversationId);
      const { signal } = current.controller;
      dispatch({ type: "attach" });
      for (let attempt = 0; ; attempt++) {
        let body: ReadableStream<Uint8Array> | null;
        try {
          body = await api.stream(conversationId, signal);
        } catch {
          if (signal.aborted) return "followed";
          unfollow(streams, current);
          dispatch({ type: "detach" });
          return "failed";
        }
        if (signal.aborted) return "followed";
        if (body) {
          let other = false;
          await read(streams, current, body, (event) => {
            other = event.type === "start" && isOtherReply(replyId, event.message_id);
            if (other) dispatch({ type: "detach" });
            return !other;
          });
          return other ? "other" : "followed";
        }
        const delay = reattachDelayMs(attempt);
        if (delay === null || !(await stillGenerating()) || signal.aborted || !(await wait(delay, signal))) {
          if (signal.aborted) return "followed";
          unfollow(streams, current);
          dispatch({ type: "detach" });
          return "ended";
        }
      }
    },
    [streams],
  );

  /**
   * Stop: the server stops the reply (POST /stop) and its stream ends with `end` (cancelled),
   * which shows it stopped, with its stats. Waiting to retry after a 429 just stops waiting.
   */
  const stop = React.useCallback(() => {
    clearRetry(streams);
    const current = following.current;
    if (!current) {
      dispatch({ type: "stop" });
      return;
    }
    current.stopRequested = true;
    stopOnServer(streams, current);
  }, [streams]);

  /** Leaves whatever this tab follows (another conversation opens): the server goes on. */
  const leave = React.useCallback(() => {
    clearRetry(streams);
    drop(streams);
  }, [streams]);

  const load = React.useCallback(
    (messages: ChatMessage[], title?: string | null, hasEarlier?: boolean) => {
      leave();
      dispatch({ type: "load", messages, title, hasEarlier });
    },
    [leave],
  );

  const reset = React.useCallback(() => {
    leave();
    dispatch({ type: "reset" });
  }, [leave]);

  /** Earlier messages loaded (scrolling up): shown above the others. */
  const prepend = React.useCallback(
    (messages: ChatMessage[], hasEarlier: boolean) => dispatch({ type: "prepend", messages, hasEarlier }),
    [],
  );
  const setTitle = React.useCallback((title: string | null) => dispatch({ type: "setTitle", title }), []);
  const clearError = React.useCallback(() => dispatch({ type: "clearError" }), []);
  /** The stored path read back: its versions go on the messages shown (lib/versions.ts). */
  const setVersions = React.useCallback((stored: ChatMessage[]) => dispatch({ type: "versions", stored }), []);

  // Stop reading when the component goes away (the server goes on with the reply).
  React.useEffect(() => leave, [leave]);

  return { state, run, attach, stop, load, prepend, reset, setTitle, clearError, setVersions };
}
