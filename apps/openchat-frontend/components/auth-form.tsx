"use client";

import { Loader2Icon, MessagesSquareIcon } from "lucide-react";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import * as React from "react";

import { useAuth } from "@/components/auth-provider";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { ApiError } from "@/lib/api";
import { safeNext } from "@/lib/safe-next";

type Mode = "login" | "signup";

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function validateCredentials(mode: Mode, email: string, password: string): { email?: string; password?: string } {
  const errors: { email?: string; password?: string } = {};
  if (!email.trim()) errors.email = "Enter your email address.";
  else if (!EMAIL_RE.test(email.trim())) errors.email = "Enter a valid email address, like name@example.com.";
  if (!password) errors.password = "Enter your password.";
  else if (mode === "signup" && password.length < 8) errors.password = "Use at least 8 characters.";
  return errors;
}

function messageFor(error: unknown, mode: Mode): { email?: string; password?: string; form?: string } {
  if (error instanceof ApiError) {
    switch (error.code) {
      case "email_taken":
        return { email: "An account with this email already exists. Sign in instead." };
      case "invalid_email":
        return { email: error.message || "This email address is not valid." };
      case "weak_password":
        return { password: error.message || "Choose a stronger password (at least 8 characters)." };
      case "invalid_credentials":
        return { form: "That email and password don't match an account." };
    }
    if (error.status === 429) return { form: "Too many attempts. Wait a moment and try again." };
    return { form: error.message };
  }
  return { form: mode === "login" ? "Could not sign in. Check your connection." : "Could not create the account." };
}

export function AuthForm({ mode }: { mode: Mode }) {
  const auth = useAuth();
  const router = useRouter();
  const params = useSearchParams();
  const requested = params.get("next");
  const [email, setEmail] = React.useState("");
  const [password, setPassword] = React.useState("");
  const [errors, setErrors] = React.useState<{ email?: string; password?: string; form?: string }>({});
  const [submitting, setSubmitting] = React.useState(false);

  // No login needed (single-user mode) or already signed in: go where the user was headed.
  React.useEffect(() => {
    if (auth.status === "authenticated") router.replace(safeNext(requested, window.location.origin));
  }, [auth.status, requested, router]);

  const onSubmit = async (e: React.FormEvent) => {
    e.preventDefault();
    const found = validateCredentials(mode, email, password);
    setErrors(found);
    if (found.email || found.password) return;
    setSubmitting(true);
    try {
      if (mode === "login") await auth.login(email.trim(), password);
      else await auth.signup(email.trim(), password);
      router.replace(safeNext(requested, window.location.origin));
    } catch (error) {
      setErrors(messageFor(error, mode));
      setSubmitting(false);
    }
  };

  const title = mode === "login" ? "Welcome back" : "Create your account";
  const other = mode === "login" ? "/signup" : "/login";
  // Passed on as given: the other page checks it the same way.
  const otherHref = requested ? `${other}?next=${encodeURIComponent(requested)}` : other;

  return (
    <main className="flex min-h-dvh items-center justify-center bg-muted/40 px-4 py-10">
      <div className="w-full max-w-sm">
        <div className="mb-6 flex flex-col items-center gap-3 text-center">
          <span className="flex size-11 items-center justify-center rounded-xl bg-primary text-primary-foreground">
            <MessagesSquareIcon className="size-5" aria-hidden />
          </span>
          <h1 className="text-2xl font-semibold tracking-tight">{title}</h1>
          <p className="text-sm text-muted-foreground">
            {mode === "login" ? "Sign in to OpenChat to continue." : "Your conversations stay on this server."}
          </p>
        </div>
        <form
          noValidate
          onSubmit={onSubmit}
          className="flex flex-col gap-4 rounded-xl border bg-card p-6 shadow-sm"
          aria-label={mode === "login" ? "Sign in" : "Sign up"}
          data-testid={`${mode}-form`}
        >
          {errors.form && (
            <p role="alert" className="rounded-md border border-destructive/40 bg-destructive/10 px-3 py-2 text-sm text-destructive" data-testid="auth-error">
              {errors.form}
            </p>
          )}
          <div className="flex flex-col gap-2">
            <Label htmlFor="email">Email</Label>
            <Input
              id="email"
              type="email"
              autoComplete="email"
              autoFocus
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              aria-invalid={!!errors.email}
              aria-describedby={errors.email ? "email-error" : undefined}
              data-testid="email-input"
            />
            {errors.email && (
              <p id="email-error" className="text-sm text-destructive" data-testid="email-error">
                {errors.email}
              </p>
            )}
          </div>
          <div className="flex flex-col gap-2">
            <Label htmlFor="password">Password</Label>
            <Input
              id="password"
              type="password"
              autoComplete={mode === "login" ? "current-password" : "new-password"}
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              aria-invalid={!!errors.password}
              aria-describedby={errors.password ? "password-error" : mode === "signup" ? "password-hint" : undefined}
              data-testid="password-input"
            />
            {errors.password ? (
              <p id="password-error" className="text-sm text-destructive" data-testid="password-error">
                {errors.password}
              </p>
            ) : (
              mode === "signup" && (
                <p id="password-hint" className="text-xs text-muted-foreground">
                  At least 8 characters.
                </p>
              )
            )}
          </div>
          <Button type="submit" disabled={submitting} data-testid="auth-submit" className="mt-1">
            {submitting && <Loader2Icon className="animate-spin" aria-hidden />}
            {mode === "login" ? "Sign in" : "Create account"}
          </Button>
        </form>
        <p className="mt-4 text-center text-sm text-muted-foreground">
          {mode === "login" ? "New to OpenChat? " : "Already have an account? "}
          <Link href={otherHref} className="font-medium text-foreground underline underline-offset-4">
            {mode === "login" ? "Create an account" : "Sign in"}
          </Link>
        </p>
      </div>
    </main>
  );
}
