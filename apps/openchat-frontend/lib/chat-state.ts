/**
 * Chat state as a pure reducer plus helpers that build the history sent to the server
 * for send / regenerate / edit. The React hook (`hooks/use-chat.ts`) only wires these up
 * to fetch and the NDJSON reader.
 */
import type { ChatRequest, EndEvent, MessageOut, ProgressEvent } from "./api-client";
import type { ChatEvent } from "./ndjson";
import { appendReplayed, replayedText } from "./resume";
import { toRequestData, type ResolvedSettings } from "./settings";
import { withVersions } from "./versions";

type FinishReason = EndEvent["finish_reason"];

export type Role = MessageOut["role"];
/**
 * `pending` and `streaming`: the reply this tab is receiving. The others come from the server too:
 * `generating` is a reply still being written by a request this tab does not follow (text so far),
 * `interrupted` one whose server stopped while writing it (the text it had saved).
 */
export type MessageStatus = "pending" | "streaming" | "generating" | "complete" | "cancelled" | "error" | "interrupted";

export interface ChatMessage {
  /** Stable client-side key (server id for loaded messages). */
  id: string;
  serverId?: string | null;
  /** Its place in the stored conversation (loaded messages): where earlier pages end. */
  position?: number | null;
  role: Role;
  content: string;
  status: MessageStatus;
  model?: string | null;
  finishReason?: FinishReason | null;
  promptTokens?: number | null;
  completionTokens?: number | null;
  ttftMs?: number | null;
  tokensPerSecond?: number | null;
  /** Replies: earlier messages left out of this reply's prompt to fit the context window. */
  omittedMessages?: number | null;
  /** How much of a long prompt the model has read, until its first token (`progress` events). */
  promptProgress?: Pick<ProgressEvent, "processed" | "total"> | null;
  /**
   * A reply this tab attached to (GET /stream): the text replayed so far, while it is shorter than
   * the stored text shown meanwhile (see `appendReplayed`).
   */
  replay?: string;
  /** Stored messages: the ids of all its versions (itself included, oldest first), and which one it is. */
  siblingIds?: string[] | null;
  siblingIndex?: number | null;
}

export interface ChatError {
  message: string;
  code?: string;
  /** Sending the same again cannot succeed (a refused option, a message too long): no Retry. */
  needsChange?: boolean;
}

/**
 * Whether a failed request's HTTP status means the request itself must change: the server
 * refused it (400, 404, 413, 422) rather than failing to answer it (429, 5xx).
 */
export function needsChange(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

export type ChatStatus = "idle" | "submitting" | "streaming" | "waiting";

export interface ChatState {
  messages: ChatMessage[];
  status: ChatStatus;
  error: ChatError | null;
  /** Set while waiting to retry after a 429: epoch ms when the retry fires. */
  retryAt: number | null;
  title: string | null;
  /** The server has earlier messages of this conversation than the first one loaded. */
  hasEarlier: boolean;
}

export const initialChatState: ChatState = {
  messages: [],
  status: "idle",
  error: null,
  retryAt: null,
  title: null,
  hasEarlier: false,
};

export type ChatAction =
  | { type: "load"; messages: ChatMessage[]; title?: string | null; hasEarlier?: boolean }
  | { type: "prepend"; messages: ChatMessage[]; hasEarlier: boolean }
  | { type: "reset" }
  | { type: "submit"; history: ChatMessage[]; assistantId: string }
  | { type: "event"; event: ChatEvent }
  | { type: "attach" }
  | { type: "detach" }
  | { type: "stop" }
  | { type: "fail"; error: ChatError }
  | { type: "busy"; retryAt: number }
  | { type: "streamClosed" }
  | { type: "setTitle"; title: string | null }
  | { type: "versions"; stored: ChatMessage[] }
  | { type: "clearError" };

function isOpenReply(m: ChatMessage | undefined): m is ChatMessage {
  return !!m && m.role === "ai" && (m.status === "pending" || m.status === "streaming");
}

function updateOpenReply(state: ChatState, fn: (m: ChatMessage) => ChatMessage | null): ChatMessage[] {
  const last = state.messages[state.messages.length - 1];
  if (!isOpenReply(last)) return state.messages;
  const next = fn(last);
  const rest = state.messages.slice(0, -1);
  return next ? [...rest, next] : rest;
}

/** Closes the open reply: drops it if nothing arrived, else marks it with `status`. */
function closeReply(state: ChatState, status: MessageStatus, finishReason?: FinishReason): ChatMessage[] {
  return updateOpenReply(state, (m) =>
    m.content === "" && status !== "complete"
      ? null
      : { ...m, status, finishReason: finishReason ?? m.finishReason ?? null },
  );
}

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  switch (action.type) {
    case "load":
      return {
        ...initialChatState,
        messages: action.messages,
        title: action.title ?? null,
        hasEarlier: action.hasEarlier ?? false,
      };
    case "prepend": {
      // Two loads may overlap (scrolling up, and sending, which loads all the rest): only
      // messages before the first one shown are added, and once none remain, none remain.
      const first = state.messages[0]?.position;
      const older = action.messages.filter((m) => first == null || m.position == null || m.position < first);
      return { ...state, messages: [...older, ...state.messages], hasEarlier: state.hasEarlier && action.hasEarlier };
    }
    case "reset":
      return initialChatState;
    case "submit":
      return {
        ...state,
        messages: [
          ...action.history,
          { id: action.assistantId, role: "ai", content: "", status: "pending" },
        ],
        status: "submitting",
        error: null,
        retryAt: null,
      };
    case "event":
      return applyEvent(state, action.event);
    case "attach": {
      // The last message is a reply the server is writing: it streams here from now on.
      const last = state.messages[state.messages.length - 1];
      if (!last || last.role !== "ai" || last.status !== "generating") return state;
      return {
        ...state,
        status: "streaming",
        error: null,
        messages: [...state.messages.slice(0, -1), { ...last, status: "streaming", replay: "" }],
      };
    }
    case "detach":
      // This tab stops following the reply; the server goes on writing it (its text so far stays).
      return {
        ...state,
        status: state.status === "waiting" ? state.status : "idle",
        // (`replay`, while set, is shorter than the text shown: that text stays.)
        messages: updateOpenReply(state, (m) =>
          m.serverId ? { ...m, status: "generating", replay: undefined, promptProgress: null } : null,
        ),
      };
    case "stop":
      if (state.status === "waiting") return { ...state, status: "idle", retryAt: null, error: null };
      if (state.status === "idle") return state;
      return { ...state, status: "idle", messages: closeReply(state, "cancelled", "cancelled") };
    case "fail":
      return {
        ...state,
        status: "idle",
        retryAt: null,
        error: action.error,
        messages: closeReply(state, "error"),
      };
    case "busy":
      return {
        ...state,
        status: "waiting",
        retryAt: action.retryAt,
        error: null,
        messages: closeReply(state, "error"),
      };
    case "streamClosed":
      // The stream ended without an `end` or `error` line: keep what arrived.
      if (state.status !== "streaming" && state.status !== "submitting") return state;
      return {
        ...state,
        status: "idle",
        messages: closeReply(state, "error"),
        error: { message: "The connection closed before the reply finished.", code: "stream_closed" },
      };
    case "setTitle":
      return { ...state, title: action.title };
    case "versions": {
      const messages = withVersions(state.messages, action.stored);
      return messages === state.messages ? state : { ...state, messages };
    }
    case "clearError":
      return { ...state, error: null };
  }
}

function applyEvent(state: ChatState, event: ChatEvent): ChatState {
  switch (event.type) {
    case "start":
      return {
        ...state,
        status: "streaming",
        messages: updateOpenReply(state, (m) => ({
          ...m,
          status: "streaming",
          serverId: event.message_id,
          model: event.model,
        })),
      };
    case "progress":
      return {
        ...state,
        messages: updateOpenReply(state, (m) => ({
          ...m,
          promptProgress: { processed: event.processed, total: event.total },
        })),
      };
    case "token":
      return {
        ...state,
        status: "streaming",
        messages: updateOpenReply(state, (m) => ({ ...m, status: "streaming", ...appendReplayed(m, event.content) })),
      };
    case "trimmed":
      return { ...state, messages: updateOpenReply(state, (m) => ({ ...m, omittedMessages: event.omitted_messages })) };
    case "title":
      return { ...state, title: event.title };
    case "end":
      return {
        ...state,
        status: "idle",
        messages: updateOpenReply(state, (m) => ({
          ...m,
          status: event.finish_reason === "cancelled" ? "cancelled" : "complete",
          content: replayedText(m),
          replay: undefined,
          serverId: event.message_id || m.serverId,
          finishReason: event.finish_reason,
          promptTokens: event.usage?.prompt_tokens ?? null,
          completionTokens: event.usage?.completion_tokens ?? null,
          ttftMs: event.timings?.ttft_ms ?? null,
          tokensPerSecond: event.timings?.tokens_per_second ?? null,
        })),
      };
    case "error":
      return {
        ...state,
        status: "idle",
        error: { message: event.message, code: event.code },
        messages: closeReply(state, "error"),
      };
  }
}

export function isBusy(state: ChatState): boolean {
  return state.status === "submitting" || state.status === "streaming" || state.status === "waiting";
}

// --- building the history to send --------------------------------------------------------

/** Replies that are not whole: not sent back as history (the server then drops them too). */
const UNFINISHED: ReadonlySet<MessageStatus> = new Set(["error", "interrupted", "generating"]);

/** Messages worth sending back: drops failed, cut-short or empty replies. */
function sendable(messages: ChatMessage[]): ChatMessage[] {
  return messages.filter((m) => !(m.role === "ai" && (UNFINISHED.has(m.status) || m.content === "")));
}

/** History for a new user message appended to the conversation. */
export function historyForSend(messages: ChatMessage[], userMessage: ChatMessage): ChatMessage[] {
  return [...sendable(messages), userMessage];
}

/** History for regenerating: everything up to and including the last user message. */
export function historyForRegenerate(messages: ChatMessage[]): ChatMessage[] | null {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === "user") return sendable(messages.slice(0, i + 1));
  }
  return null;
}

/** History for editing user message `id`: what came before it plus the edited message. */
export function historyForEdit(messages: ChatMessage[], id: string, content: string): ChatMessage[] | null {
  const index = messages.findIndex((m) => m.id === id);
  const target = messages[index];
  if (index < 0 || !target || target.role !== "user") return null;
  // A new version of the message: the versions of the one it replaces are not its own.
  return [
    ...sendable(messages.slice(0, index)),
    { ...target, content, status: "complete", siblingIds: null, siblingIndex: null },
  ];
}

export function toApiMessages(history: ChatMessage[]): ChatRequest["messages"] {
  return history.map((m) => ({ role: m.role, content: m.content }));
}

/**
 * The chat request for `history`. Always resumable: the reply goes on when this tab goes away
 * (refresh, another conversation), and Stop stops it on the server (POST /stop).
 */
export function chatRequest(conversationId: string, history: ChatMessage[], settings: ResolvedSettings): ChatRequest {
  return { id: conversationId, messages: toApiMessages(history), data: { ...toRequestData(settings), resumable: true } };
}

/** Can the last reply be regenerated? */
export function canRegenerate(state: ChatState): boolean {
  return !isBusy(state) && historyForRegenerate(state.messages) !== null;
}

// --- mapping from the API ----------------------------------------------------------------

export function fromApiMessage(m: MessageOut): ChatMessage {
  return {
    id: m.id,
    serverId: m.id,
    position: m.position,
    role: m.role,
    content: m.content,
    status: m.status,
    model: m.model ?? null,
    finishReason: m.finish_reason ?? null,
    promptTokens: m.prompt_tokens ?? null,
    completionTokens: m.completion_tokens ?? null,
    ttftMs: m.ttft_ms ?? null,
    tokensPerSecond: m.tokens_per_second ?? null,
    omittedMessages: m.omitted_messages ?? null,
    siblingIds: m.sibling_ids,
    siblingIndex: m.sibling_index,
  };
}
