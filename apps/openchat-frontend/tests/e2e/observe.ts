import type { Page } from "@playwright/test";

/**
 * Records, from the page's first script on (every load), each distinct value that an element
 * shows as the DOM changes: its text, or `attribute`, or null while it is absent. Catches what
 * shows only briefly (a header during a reload, a passing banner) without timed sampling.
 * Returns a function that reads the values seen so far in the current document.
 */
export async function recordValues(
  page: Page,
  name: string,
  selector: string,
  attribute?: string,
): Promise<() => Promise<(string | null)[]>> {
  await page.addInitScript(
    ({ name, selector, attribute }) => {
      const w = window as unknown as { __records?: Record<string, (string | null)[]> };
      w.__records ??= {};
      const seen: (string | null)[] = (w.__records[name] = []);
      const read = () => {
        const el = document.querySelector(selector);
        const value = el ? (attribute ? el.getAttribute(attribute) : (el.textContent ?? "")) : null;
        if (seen.length === 0 || seen[seen.length - 1] !== value) seen.push(value);
      };
      new MutationObserver(read).observe(document, {
        subtree: true,
        childList: true,
        characterData: true,
        attributes: true,
      });
    },
    { name, selector, attribute },
  );
  return () =>
    page.evaluate(
      (name) => (window as unknown as { __records?: Record<string, (string | null)[]> }).__records?.[name] ?? [],
      name,
    );
}
