"use client";

import "katex/dist/katex.min.css"; // bundled with its fonts from the npm package: nothing is fetched elsewhere
import { ImageIcon } from "lucide-react";
import * as React from "react";
import ReactMarkdown, { type Components, type Options } from "react-markdown";
import rehypeKatex from "rehype-katex";
import remarkBreaks from "remark-breaks";
import remarkGfm from "remark-gfm";
import remarkMath from "remark-math";

import { CopyButton } from "@/components/copy-button";
import { rehypeLowlight } from "@/lib/highlight";
import { normalizeMathDelimiters } from "@/lib/math-delimiters";

function CodeBlock({ children, ...props }: React.ComponentProps<"pre">) {
  const ref = React.useRef<HTMLPreElement>(null);
  const child = React.Children.toArray(children)[0];
  let language = "";
  if (React.isValidElement<{ className?: string }>(child)) {
    const match = /language-([\w+#.-]+)/.exec(child.props.className ?? "");
    language = match?.[1] ?? "";
  }
  return (
    <div className="not-prose group/code my-3 overflow-hidden rounded-lg border bg-code-bg" data-testid="code-block">
      <div className="flex items-center justify-between border-b px-3 py-1 text-xs text-muted-foreground">
        <span className="font-mono">{language || "code"}</span>
        <CopyButton
          label="Copy code"
          testId="copy-code"
          getText={() => ref.current?.innerText.replace(/\n$/, "") ?? ""}
        />
      </div>
      <pre ref={ref} className="overflow-x-auto p-3 font-mono text-[0.8125rem] leading-relaxed" {...props}>
        {children}
      </pre>
    </div>
  );
}

/**
 * An image in a message is shown as a link to it, never loaded: a reply steered by a prompt
 * injection could otherwise send what it read to any server through an image URL, with no click.
 */
function ImageLink({ src, alt, title }: React.ComponentProps<"img">) {
  const label = alt || "Image";
  const url = typeof src === "string" ? src : "";
  // react-markdown has already emptied an unsafe URL (javascript:, data:, …): keep only the text.
  if (!url) return <span data-testid="image-link">[{label}]</span>;
  return (
    <a href={url} target="_blank" rel="noopener noreferrer nofollow" title={title} data-testid="image-link">
      <ImageIcon className="mr-1 inline size-[1em] align-[-0.125em]" aria-hidden />
      {label} <span className="break-all text-muted-foreground">({url})</span>
    </a>
  );
}

const components: Components = {
  pre: ({ node: _node, ...props }) => <CodeBlock {...props} />,
  // A link whose URL react-markdown emptied as unsafe (javascript:, …) is left as its text.
  a: ({ node: _node, href, ...props }) =>
    href ? <a target="_blank" rel="noopener noreferrer" href={href} {...props} /> : <span>{props.children}</span>,
  img: ({ node: _node, ...props }) => <ImageLink {...props} />,
  // A table wider than the reply scrolls sideways on its own.
  table: ({ node: _node, ...props }) => (
    <div className="table-scroll" data-testid="table-scroll">
      <table {...props} />
    </div>
  ),
};

// remark-breaks: a single newline is a line break, as models (and people) mean it.
// Single dollars stay text: "$5 and $10" is about prices far more often than math.
const remarkPlugins: Options["remarkPlugins"] = [remarkGfm, [remarkMath, { singleDollarTextMath: false }], remarkBreaks];
// KaTeX first: it replaces the math code elements before highlighting could see them.
const rehypePlugins = [rehypeKatex, rehypeLowlight];

function MarkdownImpl({ children }: { children: string }) {
  return (
    <div className="prose-chat">
      <ReactMarkdown remarkPlugins={remarkPlugins} rehypePlugins={rehypePlugins} components={components}>
        {normalizeMathDelimiters(children)}
      </ReactMarkdown>
    </div>
  );
}

export const Markdown = React.memo(MarkdownImpl, (a, b) => a.children === b.children);
