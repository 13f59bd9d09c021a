import { describe, expect, it } from "vitest";

import { formatStats, hasNoStats } from "@/lib/reply-stats";

describe("formatStats", () => {
  it("shows rate, time to first token and length", () => {
    expect(formatStats({ tokensPerSecond: 31.24, ttftMs: 180.4, completionTokens: 42 })).toEqual([
      "31.2 tok/s",
      "TTFT 180 ms",
      "42 tokens",
    ]);
  });

  it("says seconds from one second on", () => {
    expect(formatStats({ tokensPerSecond: null, ttftMs: 2834, completionTokens: 3 })).toEqual(["TTFT 2.83 s", "3 tokens"]);
  });

  it("says '1 token' and leaves out the rate of a one-token reply", () => {
    expect(formatStats({ tokensPerSecond: 0, ttftMs: 95, completionTokens: 1 })).toEqual(["TTFT 95 ms", "1 token"]);
    expect(formatStats({ tokensPerSecond: 12, ttftMs: 95, completionTokens: 1 })).toEqual(["TTFT 95 ms", "1 token"]);
  });

  it("leaves out a zero rate and says '0 tokens'", () => {
    expect(formatStats({ tokensPerSecond: 0, ttftMs: null, completionTokens: 0 })).toEqual(["0 tokens"]);
    expect(formatStats({ tokensPerSecond: 0, ttftMs: 300, completionTokens: 5 })).toEqual(["TTFT 300 ms", "5 tokens"]);
  });

  it("shows nothing without numbers", () => {
    expect(formatStats({})).toEqual([]);
    expect(hasNoStats({})).toBe(true);
    expect(hasNoStats({ completionTokens: 0 })).toBe(false);
  });
});
