/**
 * The security headers of the app's pages. The Content-Security-Policy carries a fresh nonce per
 * request (set by proxy.ts); Next.js adds it to its own scripts, and the root layout gives it to
 * next-themes' no-flash script. The other headers are fixed (next.config.ts).
 */

/**
 * - script-src: only scripts carrying this request's nonce, and the chunks they load
 *   ('strict-dynamic'); 'unsafe-eval' only in development, where React needs it.
 * - style-src 'unsafe-inline': KaTeX writes a style attribute on every formula, and Radix (scroll
 *   lock of dialogs and menus) and next-themes insert <style> elements at run time without a
 *   nonce. Styles cannot run code, and with img-src, font-src and connect-src limited to this
 *   origin a style cannot send anything elsewhere either.
 * - img-src: the app's own icons, data: and blob: only; images in messages are shown as links.
 */
export function contentSecurityPolicy(nonce: string, dev = false): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${dev ? " 'unsafe-eval'" : ""}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/**
 * Same on every page and static file. "same-origin" rather than "no-referrer": with no-referrer
 * the browser sends `Origin: null` on the app's own POSTs (login, chat), which an Origin check
 * on the server would refuse; other sites get no referrer either way.
 */
export const STATIC_SECURITY_HEADERS = [
  { key: "X-Content-Type-Options", value: "nosniff" },
  { key: "X-Frame-Options", value: "DENY" },
  { key: "Referrer-Policy", value: "same-origin" },
];

/** A random nonce, 128 bits, base64. */
export function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes));
}
