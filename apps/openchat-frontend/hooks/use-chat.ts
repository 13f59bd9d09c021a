"use client";

import * as React from "react";

import { api, ApiError } from "@/lib/api";
import { chatReducer, initialChatState, needsChange, toApiMessages, type ChatMessage } from "@/lib/chat-state";
import { checkConnection } from "@/lib/connection";
import { readChatEvents, type ChatEvent } from "@/lib/ndjson";
import { toRequestData, type ResolvedSettings } from "@/lib/settings";
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

export function useChat(callbacks: Callbacks = {}) {
  const [state, dispatch] = React.useReducer(chatReducer, initialChatState);
  const abortRef = React.useRef<AbortController | null>(null);
  const retryTimer = React.useRef<ReturnType<typeof setTimeout> | null>(null);
  const callbacksRef = React.useRef(callbacks);
  React.useEffect(() => {
    callbacksRef.current = callbacks;
  });
  const runRef = React.useRef<((request: Request) => Promise<void>) | null>(null);

  const clearRetry = () => {
    if (retryTimer.current) clearTimeout(retryTimer.current);
    retryTimer.current = null;
  };

  const run = React.useCallback(async (request: Request): Promise<void> => {
    abortRef.current?.abort();
    clearRetry();
    const controller = new AbortController();
    abortRef.current = controller;
    const { conversationId, settings, earlier } = request;
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
    }

    let body: ReadableStream<Uint8Array> | null;
    try {
      body = await api.chat(
        { id: conversationId, messages: toApiMessages(history), data: toRequestData(settings) },
        controller.signal,
      );
    } catch (error) {
      if (controller.signal.aborted) return;
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

    try {
      if (!body) throw new Error("empty body");
      for await (const event of readChatEvents(body, controller.signal)) {
        if (controller.signal.aborted) break;
        dispatch({ type: "event", event });
        if (event.type === "start") callbacksRef.current.onStart?.(conversationId);
        callbacksRef.current.onEvent?.(conversationId, event);
      }
      if (!controller.signal.aborted) dispatch({ type: "streamClosed" });
    } catch {
      if (!controller.signal.aborted) {
        dispatch({
          type: "fail",
          error: { message: "The connection was lost while the reply was streaming.", code: "network" },
        });
        // Was it the server? If it no longer answers, the app shows offline until it does.
        void checkConnection();
      }
    } finally {
      if (abortRef.current === controller) abortRef.current = null;
      callbacksRef.current.onSettled?.(conversationId);
    }
  }, []);

  React.useEffect(() => {
    runRef.current = run;
  }, [run]);

  const stop = React.useCallback(() => {
    clearRetry();
    abortRef.current?.abort();
    abortRef.current = null;
    dispatch({ type: "stop" });
  }, []);

  const load = React.useCallback(
    (messages: ChatMessage[], title?: string | null, hasEarlier?: boolean) => {
      stop();
      dispatch({ type: "load", messages, title, hasEarlier });
    },
    [stop],
  );

  const reset = React.useCallback(() => {
    stop();
    dispatch({ type: "reset" });
  }, [stop]);

  /** Earlier messages loaded (scrolling up): shown above the others. */
  const prepend = React.useCallback(
    (messages: ChatMessage[], hasEarlier: boolean) => dispatch({ type: "prepend", messages, hasEarlier }),
    [],
  );
  const setTitle = React.useCallback((title: string | null) => dispatch({ type: "setTitle", title }), []);
  const clearError = React.useCallback(() => dispatch({ type: "clearError" }), []);
  /** The stored path read back: its versions go on the messages shown (lib/versions.ts). */
  const setVersions = React.useCallback((stored: ChatMessage[]) => dispatch({ type: "versions", stored }), []);

  // Abort anything in flight when the component goes away.
  React.useEffect(
    () => () => {
      abortRef.current?.abort();
      clearRetry();
    },
    [],
  );

  return { state, run, stop, load, prepend, reset, setTitle, clearError, setVersions };
}
