"use client";

import * as React from "react";

import { getConnection, subscribeConnection, type Connection } from "@/lib/connection";

/** The server's reachability (lib/connection.ts), re-rendering when it changes. */
export function useConnection(): Connection {
  return React.useSyncExternalStore(subscribeConnection, getConnection, () => "online");
}
