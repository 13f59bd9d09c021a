import { describe, expect, it } from "vitest";

import {
  conversationFilename,
  exportAllFilename,
  fileSlug,
  formatBytes,
  importProgressText,
  importResultText,
  uploadPercent,
} from "@/lib/transfer";

const nov28 = new Date(2026, 10, 28, 14, 30);

describe("export file names", () => {
  it("names a conversation's file after its title and the day", () => {
    expect(conversationFilename("Python: add two numbers!", "openchat", nov28)).toBe(
      "openchat-python-add-two-numbers-2026-11-28.json",
    );
    expect(conversationFilename("Python: add two numbers!", "markdown", nov28)).toBe(
      "openchat-python-add-two-numbers-2026-11-28.md",
    );
  });

  it("keeps letters of any script and drops what a file name cannot hold", () => {
    expect(fileSlug("Über Straßen / 東京 ?*")).toBe("über-straßen-東京");
    expect(fileSlug("  ../..\\secret  ")).toBe("secret");
  });

  it("falls back to 'conversation' for an untitled one", () => {
    expect(conversationFilename(null, "openchat", nov28)).toBe("openchat-conversation-2026-11-28.json");
    expect(fileSlug("???")).toBe("conversation");
  });

  it("cuts long titles at 60 characters without a trailing dash", () => {
    const slug = fileSlug(`${"a".repeat(59)} bcd`);
    expect(slug).toBe("a".repeat(59));
    expect([...fileSlug("é".repeat(100))]).toHaveLength(60);
  });

  it("names the export of all conversations by the day", () => {
    expect(exportAllFilename(nov28)).toBe("openchat-export-2026-11-28.json");
  });
});

describe("import messages", () => {
  it("says how many were imported and how many were already there", () => {
    expect(importResultText({ imported: 3, duplicates: 1 })).toBe("Imported 3 conversations (1 already there)");
    expect(importResultText({ imported: 1, duplicates: 0 })).toBe("Imported 1 conversation");
    expect(importResultText({ imported: 0, duplicates: 2 })).toBe("Imported 0 conversations (2 already there)");
  });

  it("shows the upload's progress, then that the server is importing", () => {
    expect(uploadPercent(0, 200)).toBe(0);
    expect(uploadPercent(50, 200)).toBe(25);
    expect(uploadPercent(199, 200)).toBe(99);
    expect(uploadPercent(200, 200)).toBe(100);
    expect(uploadPercent(5, 0)).toBe(0);
    expect(importProgressText({ phase: "uploading", loaded: 2 * 1024 * 1024, total: 8 * 1024 * 1024 })).toBe(
      "Uploading… 2.0 MB of 8.0 MB",
    );
    expect(importProgressText({ phase: "importing" })).toBe("Importing…");
  });

  it("formats sizes", () => {
    expect(formatBytes(800)).toBe("800 B");
    expect(formatBytes(512 * 1024)).toBe("512 KB");
    expect(formatBytes(1.5 * 1024 * 1024)).toBe("1.5 MB");
  });
});
