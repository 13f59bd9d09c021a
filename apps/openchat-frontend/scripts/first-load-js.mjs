#!/usr/bin/env node
/**
 * Prints the first-load JavaScript of each prerendered page of the production build:
 * every <script src> the page's HTML loads, raw and gzipped. (Next.js 16 no longer
 * prints the "First Load JS" column in `next build`.) Run after `npm run build`.
 */
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const appDir = path.join(root, ".next/server/app");
const pages = { "/": "index.html", "/login": "login.html", "/signup": "signup.html" };

const kb = (n) => `${(n / 1024).toFixed(1)} kB`;
for (const [route, file] of Object.entries(pages)) {
  const htmlPath = path.join(appDir, file);
  if (!fs.existsSync(htmlPath)) {
    console.error(`missing ${htmlPath}: run \`npm run build\` first`);
    process.exit(1);
  }
  const html = fs.readFileSync(htmlPath, "utf8");
  // Modern browsers skip `noModule` (legacy polyfill) scripts, so they are not counted.
  const tags = [...html.matchAll(/<script[^>]*>/g)].map((m) => m[0]).filter((t) => !/nomodule/i.test(t));
  const srcs = new Set(tags.map((t) => /src="([^"]+)"/.exec(t)?.[1]).filter(Boolean));
  let raw = 0;
  let gz = 0;
  for (const src of srcs) {
    const rel = decodeURIComponent(src.split("?")[0]).replace(/^\/_next\//, "");
    const buf = fs.readFileSync(path.join(root, ".next", rel));
    raw += buf.length;
    gz += zlib.gzipSync(buf, { level: 9 }).length;
  }
  console.log(`${route.padEnd(8)} ${String(srcs.size).padStart(2)} scripts  ${kb(raw).padStart(9)} raw  ${kb(gz).padStart(8)} gzip`);
}
