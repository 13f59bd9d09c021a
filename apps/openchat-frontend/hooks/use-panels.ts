"use client";

import * as React from "react";

const LAYOUT_KEY = "openchat:layout";

type DockedPanels = { left: boolean; right: boolean };

/** Docked panels on a desktop, remembered across visits (the layout key in localStorage). */
function useDockedPanels() {
  const [panels, setPanels] = React.useState<DockedPanels>(() => {
    if (typeof window === "undefined") return { left: true, right: true };
    try {
      const raw = window.localStorage.getItem(LAYOUT_KEY);
      if (raw) return { left: true, right: true, ...(JSON.parse(raw) as object) };
    } catch {
      // ignore
    }
    return { left: true, right: true };
  });
  React.useEffect(() => {
    try {
      window.localStorage.setItem(LAYOUT_KEY, JSON.stringify(panels));
    } catch {
      // ignore
    }
  }, [panels]);
  return [panels, setPanels] as const;
}

/**
 * The conversations (left) and settings (right) panels: docked columns on a desktop,
 * sheets on smaller screens. `toggle*` does what the header buttons do on each.
 */
export function usePanels(isDesktop: boolean) {
  const [docked, setDocked] = useDockedPanels();
  const [leftSheet, setLeftSheet] = React.useState(false);
  const [rightSheet, setRightSheet] = React.useState(false);

  const toggleLeft = () => (isDesktop ? setDocked((p) => ({ ...p, left: !p.left })) : setLeftSheet(true));
  const toggleRight = () => (isDesktop ? setDocked((p) => ({ ...p, right: !p.right })) : setRightSheet(true));

  return {
    isDesktop,
    docked,
    leftSheet,
    setLeftSheet,
    rightSheet,
    setRightSheet,
    /** Whether each panel is shown right now (docked column or open sheet). */
    leftOpen: isDesktop ? docked.left : leftSheet,
    rightOpen: isDesktop ? docked.right : rightSheet,
    toggleLeft,
    toggleRight,
  };
}

export type Panels = ReturnType<typeof usePanels>;
