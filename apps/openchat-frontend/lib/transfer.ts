/**
 * Export and import of conversations, the pure part: the names of the downloaded files, and
 * what the Import control says while a file uploads, imports, and when it is done.
 */

export type ExportFormat = "openchat" | "markdown";

const EXTENSIONS: Record<ExportFormat, string> = { openchat: "json", markdown: "md" };

/** `2026-11-28`, in the user's own time zone. */
function day(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/**
 * A conversation's title made fit for a file name: letters and digits (any script) kept,
 * lower-cased, everything else a single dash; at most 60 characters; "conversation" if empty.
 */
export function fileSlug(title: string | null | undefined): string {
  const slug = (title ?? "")
    .normalize("NFC")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, "-")
    .replace(/^-+|-+$/g, "");
  const cut = [...slug].slice(0, 60).join("").replace(/-+$/, "");
  return cut || "conversation";
}

/** `openchat-<title>-2026-11-28.json` (or `.md`). */
export function conversationFilename(title: string | null | undefined, format: ExportFormat, date = new Date()): string {
  return `openchat-${fileSlug(title)}-${day(date)}.${EXTENSIONS[format]}`;
}

/** `openchat-export-2026-11-28.json`: all of a user's conversations. */
export function exportAllFilename(date = new Date()): string {
  return `openchat-export-${day(date)}.json`;
}

/** POST /import's answer: conversations stored, and those skipped as already there. */
export type ImportResult = { imported: number; duplicates: number; conversation_ids?: string[] };

function conversations(n: number): string {
  return `${n} conversation${n === 1 ? "" : "s"}`;
}

/** "Imported 3 conversations (1 already there)". */
export function importResultText({ imported, duplicates }: ImportResult): string {
  return `Imported ${conversations(imported)}${duplicates > 0 ? ` (${duplicates} already there)` : ""}`;
}

export type ImportProgress =
  | { phase: "uploading"; loaded: number; total: number }
  /** The whole file has reached the server, which is reading and storing it. */
  | { phase: "importing" };

/** How much of the file has been sent, 0 to 100. */
export function uploadPercent(loaded: number, total: number): number {
  if (total <= 0) return 0;
  return Math.max(0, Math.min(100, Math.floor((loaded / total) * 100)));
}

/** `12.3 MB`, `512 KB`, `800 B`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} B`;
}

/** "Uploading… 2.0 MB of 8.0 MB", then "Importing…". */
export function importProgressText(progress: ImportProgress): string {
  if (progress.phase === "importing") return "Importing…";
  return `Uploading… ${formatBytes(progress.loaded)} of ${formatBytes(progress.total)}`;
}
