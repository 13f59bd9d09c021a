"use client";

import * as React from "react";

import { api } from "@/lib/api";
import type { ConversationSettings, ModelOut } from "@/lib/api-client";
import {
  changedSettings,
  loadNewChatDefaults,
  newChatSettings,
  removeLegacySettings,
  resolveSettings,
  saveNewChatDefaults,
  selectedModel,
  type ChatSettings,
} from "@/lib/settings";

/** Changes typed or dragged within this time go to the server in one PATCH. */
const SAVE_DELAY_MS = 400;

function toPatch(changes: Partial<ChatSettings>): ConversationSettings {
  const patch: ConversationSettings = { ...changes };
  if (typeof changes.prompt === "string" && !changes.prompt.trim()) patch.prompt = null;
  return patch;
}

/**
 * The open chat's settings (see lib/settings.ts for where they come from). A change to a
 * conversation that exists on the server is saved there; a draft's settings go with its first
 * message. Also the new-chat defaults: the last chosen model, and the prompt saved with
 * "Use for new chats".
 */
export function useChatSettings(models: ModelOut[]) {
  const [settings, setSettings] = React.useState<ChatSettings>(newChatSettings);
  const [defaultPrompt, setDefaultPrompt] = React.useState(() => loadNewChatDefaults().prompt);
  const current = React.useRef(settings);
  /** The stored conversation these settings belong to; null for a draft. */
  const savesTo = React.useRef<string | null>(null);
  /** The settings the last message went with (the server stores them with it). */
  const sent = React.useRef(settings);
  const pending = React.useRef<{ id: string; changes: Partial<ChatSettings> } | null>(null);
  const timer = React.useRef<ReturnType<typeof setTimeout> | null>(null);
  // PATCHes go one after the other, so that the last change is the one stored.
  const saving = React.useRef<Promise<unknown>>(Promise.resolve());

  React.useEffect(removeLegacySettings, []);

  const flush = React.useCallback(() => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = null;
    const due = pending.current;
    pending.current = null;
    if (!due) return;
    // A failed save is not lost: the next message sends the settings and the server stores them.
    saving.current = saving.current.then(() => api.updateSettings(due.id, toPatch(due.changes))).catch(() => undefined);
  }, []);
  React.useEffect(() => flush, [flush]);

  /** Shows `next`, the settings of stored conversation `storedId` (null: a draft). */
  const show = React.useCallback(
    (next: ChatSettings, storedId: string | null) => {
      flush();
      savesTo.current = storedId;
      current.current = next;
      setSettings(next);
    },
    [flush],
  );

  const startNew = React.useCallback(() => show(newChatSettings(), null), [show]);

  const save = React.useCallback(
    (changes: Partial<ChatSettings>) => {
      const id = savesTo.current;
      if (!id || Object.keys(changes).length === 0) return;
      if (pending.current && pending.current.id !== id) flush();
      pending.current = { id, changes: { ...pending.current?.changes, ...changes } };
      if (timer.current) clearTimeout(timer.current);
      timer.current = setTimeout(flush, SAVE_DELAY_MS);
    },
    [flush],
  );

  /** A message goes with the current settings: saves pending changes first. */
  const sending = React.useCallback(() => {
    flush();
    sent.current = current.current;
  }, [flush]);

  /** The draft `id` now exists on the server (its first reply started), with the settings it was sent with. */
  const stored = React.useCallback(
    (id: string) => {
      savesTo.current = id;
      save(changedSettings(sent.current, current.current)); // changed while the reply was starting
    },
    [save],
  );

  const update = (next: ChatSettings) => {
    const changes = changedSettings(current.current, next);
    current.current = next;
    setSettings(next);
    if (changes.model) saveNewChatDefaults({ model: changes.model });
    save(changes);
  };

  /** "Use for new chats": saves this chat's prompt as new chats' prompt, or stops doing so. */
  const setPromptForNewChats = (on: boolean) => {
    const prompt = on && settings.prompt.trim() ? settings.prompt : null;
    saveNewChatDefaults({ prompt });
    setDefaultPrompt(prompt);
  };

  const model = selectedModel(settings, models);
  const resolved = React.useMemo(() => resolveSettings(settings, model), [settings, model]);

  return {
    settings,
    /** The values shown and sent (the model's defaults filled in). */
    resolved,
    /** The model the chat uses. */
    model,
    update,
    show,
    startNew,
    stored,
    sending,
    promptForNewChats: defaultPrompt !== null && defaultPrompt === settings.prompt,
    setPromptForNewChats,
  };
}
