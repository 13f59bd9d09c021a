/**
 * NDJSON stream reading for the chat endpoint.
 *
 * `splitLines` is the pure part: it carries a partial line across chunks. `readNdjson`
 * turns a byte stream into parsed objects, and `parseChatEvent` validates one object
 * into a typed chat event (unknown or malformed events become `null` and are skipped).
 */
import type { EndEvent, StreamEvent, Timings, Usage } from "./api-client";

/**
 * One line of the chat stream: the schema's `StreamEvent`, read leniently — an `end` event's
 * usage and timings are shown only as far as they arrived.
 */
export type ChatEvent =
  | Exclude<StreamEvent, { type: "end" }>
  | (Omit<EndEvent, "usage" | "timings"> & { usage?: Partial<Usage>; timings?: Partial<Timings> });

/** Splits `buffer + chunk` into complete lines and the unfinished remainder. */
export function splitLines(buffer: string, chunk: string): { lines: string[]; rest: string } {
  const text = buffer + chunk;
  const parts = text.split("\n");
  const rest = parts.pop() ?? "";
  const lines = parts.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l)).filter((l) => l.trim() !== "");
  return { lines, rest };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Validates one decoded JSON value as a known chat event; returns null for anything else. */
export function parseChatEvent(value: unknown): ChatEvent | null {
  if (!isObject(value) || typeof value.type !== "string") return null;
  switch (value.type) {
    case "start":
      return {
        type: "start",
        id: String(value.id ?? ""),
        message_id: String(value.message_id ?? ""),
        model: String(value.model ?? ""),
      };
    case "trimmed":
      return { type: "trimmed", omitted_messages: Number(value.omitted_messages ?? 0) };
    case "progress":
      return typeof value.processed === "number" && typeof value.total === "number"
        ? { type: "progress", processed: value.processed, total: value.total }
        : null;
    case "token":
      return typeof value.content === "string" ? { type: "token", content: value.content } : null;
    case "title":
      return typeof value.title === "string" ? { type: "title", title: value.title } : null;
    case "end": {
      const reason = value.finish_reason;
      return {
        type: "end",
        message_id: String(value.message_id ?? ""),
        finish_reason: reason === "length" || reason === "cancelled" ? reason : "stop",
        usage: isObject(value.usage) ? (value.usage as Partial<Usage>) : undefined,
        timings: isObject(value.timings) ? (value.timings as Partial<Timings>) : undefined,
      };
    }
    case "error":
      return {
        type: "error",
        code: typeof value.code === "string" ? value.code : "error",
        message: typeof value.message === "string" ? value.message : "The model failed to answer.",
      };
    default:
      return null;
  }
}

/** Reads a byte stream of NDJSON and yields each parsed JSON value (invalid lines are skipped). */
export async function* readNdjson(
  stream: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<unknown> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let rest = "";
  const parse = (line: string): { ok: true; value: unknown } | { ok: false } => {
    try {
      return { ok: true, value: JSON.parse(line) };
    } catch {
      return { ok: false };
    }
  };
  try {
    while (true) {
      if (signal?.aborted) return;
      const { value, done } = await reader.read();
      if (done) break;
      const split = splitLines(rest, decoder.decode(value, { stream: true }));
      rest = split.rest;
      for (const line of split.lines) {
        const parsed = parse(line);
        if (parsed.ok) yield parsed.value;
      }
    }
    const tail = rest + decoder.decode();
    if (tail.trim() !== "") {
      const parsed = parse(tail.trim());
      if (parsed.ok) yield parsed.value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Reads a chat stream and yields only known, well-formed chat events. */
export async function* readChatEvents(
  stream: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<ChatEvent> {
  for await (const value of readNdjson(stream, signal)) {
    const event = parseChatEvent(value);
    if (event) yield event;
  }
}
