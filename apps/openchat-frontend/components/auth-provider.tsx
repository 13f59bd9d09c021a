"use client";

import { useRouter } from "next/navigation";
import * as React from "react";

import { api, ApiError, refreshAccessToken, setAccessToken, setOnUnauthorized } from "@/lib/api";
import type { TokenOut, UserOut } from "@/lib/api-client";
import { onReconnect } from "@/lib/connection";

export type AuthMode = "unknown" | "off" | "required";
export type AuthStatus = "loading" | "authenticated" | "anonymous" | "unavailable";

type AuthContextValue = {
  mode: AuthMode;
  status: AuthStatus;
  user: UserOut | null;
  /** False on a new install with no account yet: the app then opens on sign-up. */
  hasUsers: boolean | null;
  login: (email: string, password: string) => Promise<void>;
  signup: (email: string, password: string) => Promise<void>;
  logout: () => Promise<void>;
  /** Checks the session again (after the server was unreachable). */
  retry: () => void;
};

const AuthContext = React.createContext<AuthContextValue | null>(null);

export function loginHref(next: string, page: "/login" | "/signup" = "/login"): string {
  return next && next !== "/" ? `${page}?next=${encodeURIComponent(next)}` : page;
}

export function AuthProvider({ children }: { children: React.ReactNode }) {
  const router = useRouter();
  const [mode, setMode] = React.useState<AuthMode>("unknown");
  const [status, setStatus] = React.useState<AuthStatus>("loading");
  const [user, setUser] = React.useState<UserOut | null>(null);
  const [hasUsers, setHasUsers] = React.useState<boolean | null>(null);

  // First load: /auth/me without a token tells whether login is needed at all; if it is,
  // try to restore the session from the refresh cookie.
  const [attempt, setAttempt] = React.useState(0);
  const retry = React.useCallback(() => {
    setStatus("loading");
    setAttempt((n) => n + 1);
  }, []);

  React.useEffect(() => {
    let cancelled = false;
    (async () => {
      try {
        // A 4xx (401) means login is required; a 5xx or no answer, that the server is unusable.
        const openUser = await api.meWithoutToken().catch((e: unknown) => {
          if (e instanceof ApiError && e.status < 500) return null;
          throw e;
        });
        if (cancelled) return;
        if (openUser) {
          setMode("off");
          setUser(openUser);
          setStatus("authenticated");
          return;
        }
        setMode("required");
        if (await refreshAccessToken()) {
          const me = await api.me();
          if (cancelled) return;
          setUser(me);
          setStatus("authenticated");
        } else if (!cancelled) {
          const authStatus = await api.authStatus().catch((e: unknown) => {
            if (e instanceof ApiError) return null;
            throw e;
          });
          if (cancelled) return;
          if (authStatus) setHasUsers(authStatus.has_users);
          setStatus("anonymous");
        }
      } catch {
        if (!cancelled) setStatus("unavailable");
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [attempt]);

  // The server was unreachable: check the session again as soon as it answers (the connection
  // monitor polls it), so the app recovers without a reload.
  React.useEffect(() => {
    if (status !== "unavailable") return;
    return onReconnect(retry);
  }, [status, retry]);

  // When a request fails with 401 even after a refresh, send the user to the login page.
  React.useEffect(() => {
    setOnUnauthorized(() => {
      setAccessToken(null);
      setUser(null);
      setStatus("anonymous");
      const here = window.location.pathname + window.location.search;
      if (!window.location.pathname.startsWith("/login") && !window.location.pathname.startsWith("/signup")) {
        router.replace(loginHref(here));
      }
    });
    return () => setOnUnauthorized(null);
  }, [router]);

  const finishLogin = React.useCallback(async (token: TokenOut) => {
    setAccessToken(token.access_token, token.expires_in);
    const me = await api.me();
    setUser(me);
    setStatus("authenticated");
  }, []);

  const login = React.useCallback(
    async (email: string, password: string) => finishLogin(await api.login(email, password)),
    [finishLogin],
  );
  const signup = React.useCallback(
    async (email: string, password: string) => finishLogin(await api.signup(email, password)),
    [finishLogin],
  );
  const logout = React.useCallback(async () => {
    try {
      await api.logout();
    } catch {
      // the session is dropped locally either way
    }
    setAccessToken(null);
    setUser(null);
    setStatus("anonymous");
    router.replace("/login");
  }, [router]);

  const value = React.useMemo(
    () => ({ mode, status, user, hasUsers, login, signup, logout, retry }),
    [mode, status, user, hasUsers, login, signup, logout, retry],
  );

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthContextValue {
  const ctx = React.useContext(AuthContext);
  if (!ctx) throw new Error("useAuth must be used inside <AuthProvider>");
  return ctx;
}
