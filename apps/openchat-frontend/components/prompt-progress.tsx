import { Progress } from "@/components/ui/progress";
import type { ChatMessage } from "@/lib/chat-state";

/** "Reading your message… 45%": how much of a long prompt the model has read before its first token. */
export function PromptProgress({ progress }: { progress: NonNullable<ChatMessage["promptProgress"]> }) {
  const percent = progress.total > 0 ? Math.min(100, Math.floor((progress.processed / progress.total) * 100)) : 0;
  return (
    <div className="flex max-w-xs flex-col gap-1.5 py-1.5" data-testid="prompt-progress">
      <span className="text-sm text-muted-foreground" aria-hidden>
        Reading your message… {percent}%
      </span>
      <Progress value={percent} aria-label="Reading your message" />
    </div>
  );
}
