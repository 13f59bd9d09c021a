"use client";

import * as React from "react";

import { api, ApiError } from "@/lib/api";
import { saveFile } from "@/lib/download";
import { conversationFilename, exportAllFilename, type ExportFormat } from "@/lib/transfer";

/** Downloads of one conversation or of all of them, and what went wrong with the last one. */
export function useExport() {
  const [error, setError] = React.useState<string | null>(null);
  const [exporting, setExporting] = React.useState(false);

  const download = React.useCallback(async (fetchFile: () => Promise<Blob>, filename: string) => {
    setError(null);
    setExporting(true);
    try {
      saveFile(await fetchFile(), filename);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : "Could not reach the OpenChat server to export.");
    } finally {
      setExporting(false);
    }
  }, []);

  const exportConversation = React.useCallback(
    (conversation: { id: string; title?: string | null }, format: ExportFormat) =>
      download(() => api.exportConversation(conversation.id, format), conversationFilename(conversation.title, format)),
    [download],
  );
  const exportAll = React.useCallback(() => download(() => api.exportAll(), exportAllFilename()), [download]);
  return { exportConversation, exportAll, exporting, error };
}
