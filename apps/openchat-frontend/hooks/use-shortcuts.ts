"use client";

import * as React from "react";

type Shortcuts = {
  /** Ctrl/Cmd+K */
  onNewChat: () => void;
  /** Ctrl/Cmd+/ */
  onFocusComposer: () => void;
  /** Esc while a reply is running (not while a dialog, menu or list box is open). */
  onStop: () => void;
  busy: boolean;
};

/** Global keyboard shortcuts of the chat app. */
export function useShortcuts({ onNewChat, onFocusComposer, onStop, busy }: Shortcuts) {
  React.useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      if (mod && e.key.toLowerCase() === "k") {
        e.preventDefault();
        onNewChat();
      } else if (mod && e.key === "/") {
        e.preventDefault();
        onFocusComposer();
      } else if (e.key === "Escape" && !e.defaultPrevented && busy) {
        if (document.querySelector("[role=dialog],[role=alertdialog],[role=menu],[role=listbox]")) return;
        e.preventDefault();
        onStop();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onNewChat, onFocusComposer, onStop, busy]);
}
