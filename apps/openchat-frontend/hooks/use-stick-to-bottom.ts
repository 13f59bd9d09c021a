"use client";

import * as React from "react";

const THRESHOLD_PX = 48;

/**
 * Keeps a scroll container pinned to the bottom while content grows, until the user
 * scrolls up; scrolling back down (or `scrollToBottom`) re-pins it.
 */
export function useStickToBottom<T extends HTMLElement>() {
  const ref = React.useRef<T | null>(null);
  const stuck = React.useRef(true);
  const lastTop = React.useRef(0);
  const [atBottom, setAtBottom] = React.useState(true);

  const measure = React.useCallback(() => {
    const el = ref.current;
    if (!el) return;
    const distance = el.scrollHeight - el.scrollTop - el.clientHeight;
    const bottom = distance <= THRESHOLD_PX;
    if (el.scrollTop < lastTop.current - 2 && !bottom) stuck.current = false; // user scrolled up
    if (bottom) stuck.current = true;
    lastTop.current = el.scrollTop;
    setAtBottom(bottom);
  }, []);

  const scrollToBottom = React.useCallback((behavior: ScrollBehavior = "auto") => {
    const el = ref.current;
    if (!el) return;
    stuck.current = true;
    el.scrollTo({ top: el.scrollHeight, behavior });
    setAtBottom(true);
  }, []);

  /** Call after content changes: follows the stream only while pinned. */
  const follow = React.useCallback(() => {
    const el = ref.current;
    if (!el) return;
    if (stuck.current) {
      el.scrollTop = el.scrollHeight;
      lastTop.current = el.scrollTop;
      setAtBottom(true);
    } else {
      setAtBottom(el.scrollHeight - el.scrollTop - el.clientHeight <= THRESHOLD_PX);
    }
  }, []);

  // Wheel/touch upward intent un-pins immediately, even before a scroll event.
  React.useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const onWheel = (e: WheelEvent) => {
      if (e.deltaY < 0) stuck.current = false;
    };
    const onTouch = () => {
      stuck.current = false;
    };
    el.addEventListener("wheel", onWheel, { passive: true });
    el.addEventListener("touchmove", onTouch, { passive: true });
    return () => {
      el.removeEventListener("wheel", onWheel);
      el.removeEventListener("touchmove", onTouch);
    };
  }, []);

  return { ref, atBottom, onScroll: measure, scrollToBottom, follow };
}
