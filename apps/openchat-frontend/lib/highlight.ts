/**
 * A small rehype plugin: syntax-highlights fenced code with lowlight and a curated set of
 * highlight.js grammars (keeps the bundle far smaller than the full "common" set).
 * Unknown languages and unfinished fences are left as plain text.
 */
import type { Element, ElementContent, Root, RootContent } from "hast";
import { createLowlight } from "lowlight";
import bash from "highlight.js/lib/languages/bash";
import c from "highlight.js/lib/languages/c";
import cpp from "highlight.js/lib/languages/cpp";
import css from "highlight.js/lib/languages/css";
import diff from "highlight.js/lib/languages/diff";
import go from "highlight.js/lib/languages/go";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import markdown from "highlight.js/lib/languages/markdown";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";

const lowlight = createLowlight({
  bash,
  c,
  cpp,
  css,
  diff,
  go,
  java,
  javascript,
  json,
  markdown,
  python,
  rust,
  sql,
  typescript,
  xml,
  yaml,
});
lowlight.registerAlias({
  bash: ["sh", "shell", "zsh", "console"],
  javascript: ["js", "jsx", "mjs", "cjs"],
  typescript: ["ts", "tsx"],
  python: ["py"],
  xml: ["html", "svg"],
  yaml: ["yml"],
  markdown: ["md"],
  cpp: ["c++", "hpp", "cc"],
  rust: ["rs"],
});

/** Language named by a `language-xxx` class, if any. */
export function languageOf(node: Element): string | null {
  const cls = node.properties?.className;
  const list: unknown[] = Array.isArray(cls) ? cls : cls ? String(cls).split(" ") : [];
  for (const c of list) {
    if (typeof c === "string" && c.startsWith("language-")) return c.slice("language-".length);
  }
  return null;
}

function textOf(node: ElementContent | RootContent): string {
  if (node.type === "text") return node.value;
  if (node.type === "element") return node.children.map(textOf).join("");
  return "";
}

function walk(node: Root | Element): void {
  for (const child of node.children) {
    if (child.type !== "element") continue;
    if (child.tagName === "pre") {
      const code = child.children.find((c): c is Element => c.type === "element" && c.tagName === "code");
      if (code) highlight(code);
      continue;
    }
    walk(child);
  }
}

function highlight(code: Element): void {
  const lang = languageOf(code);
  if (!lang || !lowlight.registered(lang)) return;
  try {
    const tree = lowlight.highlight(lang, code.children.map(textOf).join(""));
    code.children = tree.children as ElementContent[];
    const cls = Array.isArray(code.properties.className) ? code.properties.className : [];
    code.properties.className = [...cls, "hljs"];
  } catch {
    // leave the code as plain text
  }
}

export function rehypeLowlight() {
  return (tree: Root) => {
    walk(tree);
  };
}
