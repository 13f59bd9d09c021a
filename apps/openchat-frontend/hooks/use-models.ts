"use client";

import * as React from "react";

import { api } from "@/lib/api";
import type { ModelOut } from "@/lib/api-client";

export function useModels() {
  const [models, setModels] = React.useState<ModelOut[]>([]);
  const [error, setError] = React.useState<string | null>(null);
  const [loading, setLoading] = React.useState(true);

  const load = React.useCallback(async () => {
    setLoading(true);
    try {
      const res = await api.models();
      setModels(res.models);
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : "Could not load models.");
    } finally {
      setLoading(false);
    }
  }, []);

  React.useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect -- fetching on mount
    void load();
  }, [load]);

  const defaultModel = models.find((m) => m.default) ?? models[0] ?? null;
  return { models, defaultModel, error, loading, reload: load };
}
