"use client";

import { CodeIcon, LightbulbIcon, MessagesSquareIcon, PenLineIcon, TerminalIcon } from "lucide-react";

export const EXAMPLE_PROMPTS = [
  { icon: CodeIcon, title: "Write a Python function", prompt: "Write a Python function that checks whether a string is a palindrome." },
  { icon: LightbulbIcon, title: "Explain a concept", prompt: "Explain what a hash map is in two short paragraphs." },
  { icon: TerminalIcon, title: "Shell one-liner", prompt: "Give me a bash one-liner that counts lines in all .ts files in a folder." },
  { icon: PenLineIcon, title: "Review some code", prompt: "What is wrong with this JavaScript: `for (var i = 0; i < 3; i++) setTimeout(() => console.log(i));`" },
];

export function EmptyState({ onPick, modelName }: { onPick: (prompt: string) => void; modelName?: string }) {
  return (
    <div className="mx-auto flex w-full max-w-2xl flex-1 flex-col items-center justify-center gap-8 px-4 py-10" data-testid="empty-state">
      <div className="flex flex-col items-center gap-3 text-center">
        <span className="flex size-12 items-center justify-center rounded-2xl bg-primary text-primary-foreground shadow-sm">
          <MessagesSquareIcon className="size-6" aria-hidden />
        </span>
        <h1 className="text-2xl font-semibold tracking-tight">How can I help?</h1>
        <p className="text-sm text-muted-foreground">
          {modelName ? (
            <>
              Chatting with <span className="font-medium text-foreground">{modelName}</span>, running on your own server.
            </>
          ) : (
            "Open-source models, running on your own server."
          )}
        </p>
      </div>
      <ul className="grid w-full gap-2 sm:grid-cols-2">
        {EXAMPLE_PROMPTS.map(({ icon: Icon, title, prompt }) => (
          <li key={title}>
            <button
              type="button"
              onClick={() => onPick(prompt)}
              className="flex h-full w-full flex-col gap-1 rounded-xl border bg-card p-3 text-left text-sm transition-colors hover:bg-accent focus-visible:ring-2 focus-visible:ring-ring focus-visible:outline-none"
              data-testid="example-prompt"
            >
              <span className="flex items-center gap-2 font-medium">
                <Icon className="size-4 text-brand" aria-hidden />
                {title}
              </span>
              <span className="line-clamp-2 text-muted-foreground">{prompt}</span>
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}
