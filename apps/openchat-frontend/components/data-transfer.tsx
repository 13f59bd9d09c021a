"use client";

import { DownloadIcon, UploadIcon } from "lucide-react";
import * as React from "react";

import { Button } from "@/components/ui/button";
import { Progress } from "@/components/ui/progress";
import { useExport } from "@/hooks/use-export";
import { useImport } from "@/hooks/use-import";
import { importProgressText, importResultText, uploadPercent, type ImportResult } from "@/lib/transfer";

/** Export all conversations, and import a file of them (OpenChat, ChatGPT or Open WebUI JSON). */
export function DataTransfer({ onImported }: { onImported: (result: ImportResult) => void }) {
  const exports = useExport();
  const importer = useImport(onImported);
  const fileInput = React.useRef<HTMLInputElement>(null);
  const { progress } = importer;

  return (
    <section className="grid gap-2" aria-labelledby="data-transfer-heading" data-testid="data-transfer">
      <h3 id="data-transfer-heading" className="text-sm font-medium">
        Your conversations
      </h3>
      <div className="flex flex-wrap gap-2">
        <Button
          variant="outline"
          size="sm"
          onClick={() => void exports.exportAll()}
          disabled={exports.exporting}
          data-testid="export-all"
        >
          <DownloadIcon aria-hidden /> Export all
        </Button>
        <Button
          variant="outline"
          size="sm"
          onClick={() => fileInput.current?.click()}
          disabled={importer.busy}
          data-testid="import-button"
        >
          <UploadIcon aria-hidden /> Import
        </Button>
        <input
          ref={fileInput}
          type="file"
          accept=".json,application/json"
          className="hidden"
          aria-label="File to import"
          data-testid="import-input"
          onChange={(e) => {
            const file = e.target.files?.[0];
            e.target.value = ""; // the same file can be picked again
            if (file) void importer.start(file);
          }}
        />
      </div>
      <p className="text-xs text-muted-foreground">
        Export saves every conversation, with all versions, as OpenChat JSON. Import takes that, a ChatGPT export
        (conversations.json) or an Open WebUI export, up to 100 MB.
      </p>
      {progress && (
        <div className="grid gap-1.5" data-testid="import-progress" data-phase={progress.phase}>
          <Progress
            value={progress.phase === "uploading" ? uploadPercent(progress.loaded, progress.total) : 100}
            className={progress.phase === "importing" ? "animate-pulse" : undefined}
            aria-label="Import progress"
          />
          <p className="text-xs text-muted-foreground" role="status">
            {importProgressText(progress)}
          </p>
        </div>
      )}
      {importer.result && (
        <p className="text-xs" role="status" data-testid="import-result">
          {importResultText(importer.result)}
        </p>
      )}
      {importer.error && (
        <p className="text-xs text-destructive" role="alert" data-testid="import-error">
          {importer.error}
        </p>
      )}
      {exports.error && (
        <p className="text-xs text-destructive" role="alert" data-testid="export-error">
          {exports.error}
        </p>
      )}
    </section>
  );
}
