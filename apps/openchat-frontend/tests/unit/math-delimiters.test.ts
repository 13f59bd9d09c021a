import { describe, expect, it } from "vitest";

import { normalizeMathDelimiters } from "@/lib/math-delimiters";

describe("normalizeMathDelimiters", () => {
  it("turns \\( … \\) into inline $$ math", () => {
    expect(normalizeMathDelimiters("The area is \\( \\pi r^2 \\), roughly.")).toBe("The area is $$\\pi r^2$$, roughly.");
  });

  it("turns \\[ … \\] alone on its line into a displayed $$ block", () => {
    expect(normalizeMathDelimiters("So:\n\\[ E = mc^2 \\]\nwhere m is the mass.")).toBe(
      "So:\n$$\nE = mc^2\n$$\nwhere m is the mass.",
    );
    expect(normalizeMathDelimiters("\\[\n  x = \\frac{-b}{2a}\n\\]")).toBe("$$\nx = \\frac{-b}{2a}\n$$");
  });

  it("keeps \\[ … \\] inside a sentence inline", () => {
    expect(normalizeMathDelimiters("Both \\[a+b\\] and \\(c\\).")).toBe("Both $$a+b$$ and $$c$$.");
  });

  it("makes a one-line $$ … $$ formula a displayed block", () => {
    expect(normalizeMathDelimiters("Energy:\n$$E = mc^2$$\nDone.")).toBe("Energy:\n$$\nE = mc^2\n$$\nDone.");
  });

  it("keeps the indentation of a list item", () => {
    expect(normalizeMathDelimiters("1. Square it:\n   \\[ y = x^2 \\]\n2. Next")).toBe(
      "1. Square it:\n   $$\n   y = x^2\n   $$\n2. Next",
    );
  });

  it("leaves inline code spans alone", () => {
    const text = "Write `\\( x \\)` or ``\\[ y \\]`` to get \\( x \\).";
    expect(normalizeMathDelimiters(text)).toBe("Write `\\( x \\)` or ``\\[ y \\]`` to get $$x$$.");
  });

  it("leaves fenced code blocks alone, also unfinished ones while streaming", () => {
    const fenced = "```latex\n\\[ a \\]\n\\( b \\)\n$$c$$\n```\nafter \\(d\\)";
    expect(normalizeMathDelimiters(fenced)).toBe("```latex\n\\[ a \\]\n\\( b \\)\n$$c$$\n```\nafter $$d$$");
    const tilde = "~~~\n\\( kept \\)\n~~~";
    expect(normalizeMathDelimiters(tilde)).toBe(tilde);
    const open = "Code:\n````\n\\( still code \\)\n```\n\\( still code \\)";
    expect(normalizeMathDelimiters(open)).toBe(open);
  });

  it("leaves an escaped backslash and text without math as they are", () => {
    expect(normalizeMathDelimiters("Escaped: \\\\(x\\\\) stays.")).toBe("Escaped: \\\\(x\\\\) stays.");
    expect(normalizeMathDelimiters("No math here (really) [ok].")).toBe("No math here (really) [ok].");
    expect(normalizeMathDelimiters("It costs $5 and $10.")).toBe("It costs $5 and $10.");
  });

  it("leaves an unclosed delimiter (a reply still streaming) as it is", () => {
    expect(normalizeMathDelimiters("Then \\( x^2 + ")).toBe("Then \\( x^2 + ");
  });
});
