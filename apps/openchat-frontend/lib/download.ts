/** Saves `blob` as a download named `filename` (the browser's own download, no new tab). */
export function saveFile(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.style.display = "none";
  document.body.appendChild(link);
  link.click();
  link.remove();
  // The download has its own copy once it started; a large file's memory is freed soon after.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
