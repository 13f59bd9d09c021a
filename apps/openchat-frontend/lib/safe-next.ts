/**
 * Where to go after signing in: the `next` parameter, only if it is a path on this origin.
 *
 * The value is resolved the way the browser will resolve it (the URL parser drops tabs and
 * newlines and reads `\` as `/`, so `/\evil.com` and `/\t/evil.com` mean `//evil.com`), and
 * the result must still be on `origin`. Anything else, and the auth pages themselves (a loop),
 * go to `/`. The returned path is the resolved one, so the router gets exactly what was checked.
 */
export function safeNext(next: string | null | undefined, origin: string): string {
  // A path, written as one: no scheme, no leading space, nothing the parser would strip first.
  if (!next || !next.startsWith("/")) return "/";
  let url: URL;
  try {
    url = new URL(next, origin);
  } catch {
    return "/";
  }
  const home = new URL(origin).origin;
  if (url.origin !== home) return "/";
  // "/.//evil.com" resolves here to the path "//evil.com", which on its own is another host.
  if (url.pathname.startsWith("//")) return "/";
  if (/^\/(login|signup)(\/|$)/.test(url.pathname)) return "/";
  return url.pathname + url.search + url.hash;
}
