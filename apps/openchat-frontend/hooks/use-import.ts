"use client";

import * as React from "react";

import { api, ApiError } from "@/lib/api";
import type { ImportProgress, ImportResult } from "@/lib/transfer";

/** Importing a file: its upload's progress, then the server's answer (the result or its error). */
export function useImport(onImported: (result: ImportResult) => void) {
  const [progress, setProgress] = React.useState<ImportProgress | null>(null);
  const [result, setResult] = React.useState<ImportResult | null>(null);
  const [error, setError] = React.useState<string | null>(null);

  const start = React.useCallback(
    async (file: File) => {
      setResult(null);
      setError(null);
      setProgress({ phase: "uploading", loaded: 0, total: file.size });
      try {
        const answer = await api.importFile(file, {
          // Once all is sent, the server is importing: a late progress event does not undo that.
          onUpload: (loaded, total) =>
            setProgress((p) => (p?.phase === "importing" ? p : { phase: "uploading", loaded, total })),
          onSent: () => setProgress({ phase: "importing" }),
        });
        setResult(answer);
        onImported(answer);
      } catch (e) {
        // The server's reason (a bad record, too large), or: it never answered.
        setError(
          e instanceof ApiError ? e.message : "The file did not reach the OpenChat server. Check your connection and try again.",
        );
      } finally {
        setProgress(null);
      }
    },
    [onImported],
  );

  return { start, progress, result, error, busy: progress !== null };
}
