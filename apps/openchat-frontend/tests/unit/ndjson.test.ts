import { describe, expect, it } from "vitest";

import { parseChatEvent, readChatEvents, readNdjson, splitLines } from "@/lib/ndjson";

function streamOf(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(typeof c === "string" ? enc.encode(c) : c);
      controller.close();
    },
  });
}

async function collect<T>(gen: AsyncGenerator<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of gen) out.push(v);
  return out;
}

describe("splitLines", () => {
  it("keeps the unfinished remainder", () => {
    expect(splitLines("", '{"a":1}\n{"b"')).toEqual({ lines: ['{"a":1}'], rest: '{"b"' });
    expect(splitLines('{"b"', ":2}\n")).toEqual({ lines: ['{"b":2}'], rest: "" });
  });
  it("drops blank lines and CR", () => {
    expect(splitLines("", "\r\n{\"a\":1}\r\n\n")).toEqual({ lines: ['{"a":1}'], rest: "" });
  });
});

describe("readNdjson", () => {
  it("joins a line split across chunks", async () => {
    const values = await collect(readNdjson(streamOf(['{"type":"tok', 'en","content":"Hel', 'lo"}\n'])));
    expect(values).toEqual([{ type: "token", content: "Hello" }]);
  });

  it("reads several lines from one chunk", async () => {
    const values = await collect(
      readNdjson(streamOf(['{"type":"token","content":"a"}\n{"type":"token","content":"b"}\n{"type":"token","content":"c"}\n'])),
    );
    expect(values).toHaveLength(3);
  });

  it("reads a trailing line without a newline", async () => {
    const values = await collect(readNdjson(streamOf(['{"n":1}\n{"n":2}'])));
    expect(values).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it("handles a multi-byte character split between chunks", async () => {
    const bytes = new TextEncoder().encode('{"type":"token","content":"héllo 👋"}\n');
    const values = await collect(readNdjson(streamOf([bytes.slice(0, 30), bytes.slice(30)])));
    expect(values).toEqual([{ type: "token", content: "héllo 👋" }]);
  });

  it("skips lines that are not JSON", async () => {
    const values = await collect(readNdjson(streamOf(["not json\n", '{"ok":true}\n'])));
    expect(values).toEqual([{ ok: true }]);
  });
});

describe("readChatEvents", () => {
  it("ignores unknown event types", async () => {
    const events = await collect(
      readChatEvents(
        streamOf([
          '{"type":"start","id":"c1","message_id":"m1","model":"x"}\n',
          '{"type":"keepalive"}\n{"type":"token","content":"Hi"}\n',
          '{"type":"future_thing","data":[1,2]}\n',
          '{"type":"end","message_id":"m1","finish_reason":"stop","usage":{"prompt_tokens":3,"completion_tokens":1},"timings":{"ttft_ms":12,"tokens_per_second":30}}',
        ]),
      ),
    );
    expect(events.map((e) => e.type)).toEqual(["start", "token", "end"]);
  });

  it("passes error events through", async () => {
    const events = await collect(
      readChatEvents(streamOf(['{"type":"token","content":"a"}\n{"type":"error","code":"model_failed","message":"boom"}\n'])),
    );
    expect(events[1]).toEqual({ type: "error", code: "model_failed", message: "boom" });
  });
});

describe("parseChatEvent", () => {
  it("rejects malformed objects", () => {
    expect(parseChatEvent(null)).toBeNull();
    expect(parseChatEvent([1])).toBeNull();
    expect(parseChatEvent({ type: "token", content: 5 })).toBeNull();
    expect(parseChatEvent({ content: "x" })).toBeNull();
  });
  it("defaults an unknown finish reason to stop", () => {
    expect(parseChatEvent({ type: "end", message_id: "m", finish_reason: "weird" })).toMatchObject({
      finish_reason: "stop",
    });
  });
  it("reads prompt progress, and drops it without its numbers", () => {
    expect(parseChatEvent({ type: "progress", processed: 768, total: 3012 })).toEqual({
      type: "progress",
      processed: 768,
      total: 3012,
    });
    expect(parseChatEvent({ type: "progress", processed: "768", total: 3012 })).toBeNull();
    expect(parseChatEvent({ type: "progress", processed: 768 })).toBeNull();
  });
  it("gives error events a readable fallback", () => {
    expect(parseChatEvent({ type: "error" })).toEqual({
      type: "error",
      code: "error",
      message: "The model failed to answer.",
    });
  });
});
