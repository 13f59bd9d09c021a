"use client";

import { CheckCircle2Icon, Loader2Icon, WifiOffIcon } from "lucide-react";
import * as React from "react";

import { Button } from "@/components/ui/button";
import { useConnection } from "@/hooks/use-connection";
import { checkConnection } from "@/lib/connection";
import { cn } from "@/lib/utils";

/** The full-page message when the app could not start because the server did not answer. */
export function ServerUnavailable({ onRetry }: { onRetry: () => void }) {
  const connection = useConnection();
  return (
    <div className="flex h-dvh flex-col items-center justify-center gap-3 px-4 text-center" role="alert" data-testid="server-unavailable">
      <p className="font-medium">The OpenChat server can&apos;t be reached right now.</p>
      <p className="text-sm text-muted-foreground">
        {connection === "offline"
          ? "Check that the backend is running. OpenChat reconnects by itself as soon as it answers."
          : "Check that the backend is running, then try again."}
      </p>
      <Button onClick={onRetry}>Try again</Button>
    </div>
  );
}

/**
 * A strip under the header while the server can't be reached ("Reconnecting…", with a button
 * to try at once) and briefly once it answers again. Nothing while online.
 */
export function ConnectionBanner() {
  const connection = useConnection();
  const [checking, setChecking] = React.useState(false);
  if (connection === "online") return null;

  const offline = connection === "offline";
  const tryNow = async () => {
    setChecking(true);
    try {
      await checkConnection();
    } finally {
      setChecking(false);
    }
  };

  return (
    <div
      role="status"
      className={cn(
        "flex shrink-0 items-center justify-center gap-2 border-b px-3 py-1.5 text-sm",
        offline ? "bg-destructive/10 text-foreground" : "bg-brand/10 text-foreground",
      )}
      data-testid="connection-status"
      data-state={connection}
    >
      {offline ? (
        <>
          <WifiOffIcon className="size-4 shrink-0 text-destructive" aria-hidden />
          <span>Offline: the OpenChat server can&apos;t be reached. Reconnecting…</span>
          <Button variant="outline" size="sm" className="h-7" onClick={tryNow} disabled={checking}>
            {checking && <Loader2Icon className="animate-spin" aria-hidden />}
            Try now
          </Button>
        </>
      ) : (
        <>
          <CheckCircle2Icon className="size-4 shrink-0 text-brand" aria-hidden />
          <span>Reconnected.</span>
        </>
      )}
    </div>
  );
}
