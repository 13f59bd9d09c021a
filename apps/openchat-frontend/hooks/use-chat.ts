"use client";

import * as React from "react";

import { api, ApiError } from "@/lib/api";
import { chatReducer, initialChatState, toApiMessages, type ChatMessage } from "@/lib/chat-state";
import { readChatEvents, type ChatEvent } from "@/lib/ndjson";
import { toRequestData, type ChatSettings } from "@/lib/settings";
import { localId } from "@/lib/utils";

type Callbacks = {
  /** A stream began (the conversation now exists on the server). */
  onStart?: (conversationId: string) => void;
  onEvent?: (conversationId: string, event: ChatEvent) => void;
  /** The request finished one way or another. */
  onSettled?: (conversationId: string) => void;
};

type Request = { conversationId: string; history: ChatMessage[]; settings: ChatSettings };

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
    const { conversationId, history, settings } = request;
    dispatch({ type: "submit", history, assistantId: localId("ai") });

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
          void runRef.current?.(request);
        }, seconds * 1000);
        return;
      }
      dispatch({ type: "fail", error: { message: error.message, code: error.code } });
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
    (messages: ChatMessage[], title?: string | null) => {
      stop();
      dispatch({ type: "load", messages, title });
    },
    [stop],
  );

  const reset = React.useCallback(() => {
    stop();
    dispatch({ type: "reset" });
  }, [stop]);

  const setTitle = React.useCallback((title: string | null) => dispatch({ type: "setTitle", title }), []);

  // Abort anything in flight when the component goes away.
  React.useEffect(
    () => () => {
      abortRef.current?.abort();
      clearRetry();
    },
    [],
  );

  return { state, run, stop, load, reset, setTitle };
}
