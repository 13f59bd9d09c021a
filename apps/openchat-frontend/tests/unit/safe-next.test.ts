import { describe, expect, it } from "vitest";

import { safeNext } from "@/lib/safe-next";

const ORIGIN = "http://127.0.0.1:3000";

// Each of these, followed as given, would leave the app (or is not a path at all).
const hostile: [string, string][] = [
  ["protocol-relative", "//evil.com"],
  ["protocol-relative with a path", "//evil.com/c/1"],
  ["backslash read as a slash", "/\\evil.com"],
  ["two backslashes", "\\\\evil.com"],
  ["tab dropped by the URL parser", "/\t/evil.com"],
  ["newline dropped by the URL parser", "/\n/evil.com"],
  ["carriage return dropped by the URL parser", "/\r/evil.com"],
  ["tab and backslash", "/\t\\evil.com"],
  ["dot segment collapsing to //", "/.//evil.com"],
  ["dot-dot segment collapsing to //", "/x/..//evil.com"],
  ["javascript: URL", "javascript:alert(1)"],
  ["javascript: URL in capitals", "JavaScript:alert(1)"],
  ["data: URL", "data:text/html,<script>alert(1)</script>"],
  ["absolute URL elsewhere", "https://evil.com"],
  ["absolute URL elsewhere, no scheme slashes", "https:evil.com"],
  ["absolute URL with this host as user info", "http://127.0.0.1:3000@evil.com/"],
  ["absolute URL on this origin (not written as a path)", "http://127.0.0.1:3000/c/1"],
  ["leading space", " /x"],
  ["leading tab", "\t/x"],
  ["leading newline", "\n//evil.com"],
  ["no leading slash", "evil.com"],
  ["the login page (a loop)", "/login"],
  ["the sign-up page (a loop)", "/signup?next=/c/1"],
  ["empty", ""],
];

// Odd but harmless: they stay on this origin, as the path the browser would resolve.
const kept: [string, string, string][] = [
  ["a conversation", "/c/abc-123", "/c/abc-123"],
  ["the home page", "/", "/"],
  ["query and fragment", "/c/1?x=1#end", "/c/1?x=1#end"],
  ["an encoded backslash stays a path segment", "/%5Cevil.com", "/%5Cevil.com"],
  ["an encoded slash pair stays a path segment", "/%2F%2Fevil.com", "/%2F%2Fevil.com"],
  ["an encoded tab stays a path segment", "/%09/evil.com", "/%09/evil.com"],
  ["an encoded newline stays a path segment", "/%0A/evil.com", "/%0A/evil.com"],
  ["a tab inside a segment is dropped, as the browser does", "/c/a\tb", "/c/ab"],
  ["dot segments are resolved", "/x/../c/1", "/c/1"],
  ["a page whose name starts like login", "/loginfo", "/loginfo"],
];

describe("safeNext", () => {
  it.each(hostile)("sends %s home", (_name, next) => {
    expect(safeNext(next, ORIGIN)).toBe("/");
  });

  it.each(kept)("keeps %s", (_name, next, expected) => {
    expect(safeNext(next, ORIGIN)).toBe(expected);
  });

  it("goes home without a next", () => {
    expect(safeNext(null, ORIGIN)).toBe("/");
    expect(safeNext(undefined, ORIGIN)).toBe("/");
  });

  it.each([...hostile.map(([name, next]) => [name, next]), ...kept.map(([name, next]) => [name, next])])(
    "%s: whatever it returns resolves to this origin, again and again",
    (_name, next) => {
      const target = safeNext(next, ORIGIN);
      expect(target.startsWith("/") && !target.startsWith("//")).toBe(true);
      expect(new URL(target, ORIGIN).origin).toBe(ORIGIN);
      expect(safeNext(target, ORIGIN)).toBe(target);
    },
  );
});
