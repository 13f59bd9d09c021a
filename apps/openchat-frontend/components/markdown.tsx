"use client";

import * as React from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";

import { CopyButton } from "@/components/copy-button";
import { rehypeLowlight } from "@/lib/highlight";

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

const components: Components = {
  pre: ({ node: _node, ...props }) => <CodeBlock {...props} />,
  a: ({ node: _node, ...props }) => <a target="_blank" rel="noopener noreferrer" {...props} />,
};

const remarkPlugins = [remarkGfm];
const rehypePlugins = [rehypeLowlight];

function MarkdownImpl({ children }: { children: string }) {
  return (
    <div className="prose-chat">
      <ReactMarkdown remarkPlugins={remarkPlugins} rehypePlugins={rehypePlugins} components={components}>
        {children}
      </ReactMarkdown>
    </div>
  );
}

export const Markdown = React.memo(MarkdownImpl, (a, b) => a.children === b.children);
