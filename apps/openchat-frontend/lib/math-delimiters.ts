/**
 * Models write LaTeX with `\( … \)` and `\[ … \]`, which Markdown reads as escaped brackets
 * (the backslashes vanish). remark-math understands only dollars, so before rendering these
 * become `$$…$$` (inline or displayed), outside code blocks and code spans, which stay as written.
 * A formula alone on its line(s) becomes a `$$` block, so that it is displayed, not inline.
 * Single dollars are not math (remark-math's singleDollarTextMath is off): "$5 and $10" is prose.
 */

const FENCE_OPEN = /^\s*(`{3,}|~{3,})(.*)$/;
const CODE_SPAN = /(?<!`)(`+)(?!`)[\s\S]*?(?<!`)\1(?!`)/g;
const DISPLAY = /(?<!\\)\\\[([\s\S]+?)\\\]/g;
const INLINE = /(?<!\\)\\\(([\s\S]+?)\\\)/g;
const DOLLAR_LINE = /^([ \t]*)\$\$([^$\n]+)\$\$[ \t]*$/gm;

export function normalizeMathDelimiters(markdown: string): string {
  if (!/\\[([]|\$\$/.test(markdown)) return markdown;
  const out: string[] = [];
  let prose: string[] = [];
  let fence: string | null = null;
  const flush = () => {
    if (prose.length > 0) out.push(convertProse(prose.join("\n")));
    prose = [];
  };
  for (const line of markdown.split("\n")) {
    if (fence !== null) {
      out.push(line);
      if (isClosingFence(line, fence)) fence = null;
      continue;
    }
    const open = FENCE_OPEN.exec(line);
    // A backtick fence's info string cannot hold a backtick (then it is inline code).
    if (open?.[1] && !(open[1].startsWith("`") && open[2]?.includes("`"))) {
      flush();
      fence = open[1];
      out.push(line);
      continue;
    }
    prose.push(line);
  }
  flush();
  return out.join("\n");
}

function isClosingFence(line: string, fence: string): boolean {
  const trimmed = line.trim();
  return trimmed.length >= fence.length && [...trimmed].every((c) => c === fence[0]);
}

/** Converts the delimiters in text outside fenced code, skipping inline code spans. */
function convertProse(text: string): string {
  let result = "";
  let last = 0;
  for (const span of text.matchAll(CODE_SPAN)) {
    result += convertMath(text.slice(last, span.index));
    result += span[0];
    last = span.index + span[0].length;
  }
  return result + convertMath(text.slice(last));
}

function convertMath(text: string): string {
  return text
    .replace(DISPLAY, (match, tex: string, offset: number) => {
      const lineStart = text.lastIndexOf("\n", offset - 1) + 1;
      const before = text.slice(lineStart, offset);
      const end = offset + match.length;
      const lineEnd = text.indexOf("\n", end);
      const after = text.slice(end, lineEnd < 0 ? undefined : lineEnd);
      if (/^[ \t]*$/.test(before) && /^[ \t]*$/.test(after)) return block(before, tex);
      return `$$${tex.trim()}$$`;
    })
    .replace(DOLLAR_LINE, (_match, indent: string, tex: string) => indent + block(indent, tex))
    .replace(INLINE, (_match, tex: string) => `$$${tex.trim()}$$`);
}

/** A display formula as a `$$` block, indented like the line it stood on (e.g. in a list). */
function block(indent: string, tex: string): string {
  return `$$\n${indent}${tex.trim()}\n${indent}$$`;
}
