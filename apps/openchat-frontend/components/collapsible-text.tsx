"use client";

import * as React from "react";

import { cn } from "@/lib/utils";

/**
 * Plain text clipped to a few hundred pixels with a "Show more" / "Show less" toggle, shown only
 * when the text is taller than that (a pasted document should not fill thousands of pixels).
 * The whole text stays in the page, only clipped, so it can still be found and copied.
 */
export function CollapsibleText({ text, className }: { text: string; className?: string }) {
  const id = React.useId();
  const ref = React.useRef<HTMLDivElement>(null);
  const [expanded, setExpanded] = React.useState(false);
  const [clipped, setClipped] = React.useState(false);

  // Measured, not guessed from the length: whether it is clipped depends on the width.
  React.useLayoutEffect(() => {
    const el = ref.current;
    if (!el || expanded) return;
    const measure = () => setClipped(el.scrollHeight > el.clientHeight + 1);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, [text, expanded]);

  return (
    <>
      <div
        id={id}
        ref={ref}
        className={cn(
          "whitespace-pre-wrap",
          !expanded && "max-h-80 overflow-hidden",
          !expanded && clipped && "mask-b-from-60%",
          className,
        )}
        data-testid="message-content"
      >
        {text}
      </div>
      {(clipped || expanded) && (
        <button
          type="button"
          className="mt-1 text-xs font-medium text-muted-foreground underline-offset-2 hover:text-foreground hover:underline"
          aria-expanded={expanded}
          aria-controls={id}
          onClick={() => setExpanded((v) => !v)}
          data-testid="toggle-long-message"
        >
          {expanded ? "Show less" : "Show more"}
        </button>
      )}
    </>
  );
}
