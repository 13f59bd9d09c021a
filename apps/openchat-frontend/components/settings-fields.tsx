"use client";

import * as React from "react";

import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Slider } from "@/components/ui/slider";
import type { SamplingRange } from "@/lib/api-client";
import { clampToRange, stepDecimals } from "@/lib/settings";

type NumberFieldOptions = {
  id: string;
  label: string;
  /** The applied value; null while the model (and so its default) is unknown. */
  value: number | null;
  range: SamplingRange | null;
  integer?: boolean;
  onChange: (value: number) => void;
};

function inRange(n: number, range: SamplingRange, integer: boolean): boolean {
  return Number.isFinite(n) && n >= range.min && n <= range.max && (!integer || Number.isInteger(n));
}

const format = (value: number | null) => (value === null ? "" : String(value));

/**
 * A number input that applies only what the server accepts. While the text is not a number in
 * the range, `error` says so (with the range) and the applied value stays as it was; on leaving
 * the field, a number outside the range is clamped to it and anything else goes back to the
 * applied value, so that what is shown is what will be sent.
 */
function useNumberField({ id, label, value, range, integer = false, onChange }: NumberFieldOptions) {
  const [text, setText] = React.useState(format(value));
  // The applied value that `text` stands for: the text is replaced when the value changes elsewhere.
  const [shown, setShown] = React.useState(value);
  if (shown !== value) {
    setShown(value);
    setText(format(value));
  }
  const parsed = text.trim() === "" ? Number.NaN : Number(text);
  const error =
    range && !inRange(parsed, range, integer)
      ? `${label} must be ${integer ? "a whole number" : "a number"} from ${range.min} to ${range.max}.`
      : null;

  const apply = (n: number) => {
    setShown(n);
    onChange(n);
  };

  const props: React.ComponentProps<"input"> = {
    id,
    type: "number",
    inputMode: integer ? "numeric" : "decimal",
    min: range?.min,
    max: range?.max,
    step: range?.step,
    value: text,
    disabled: range === null,
    onChange: (e) => {
      setText(e.target.value);
      const n = e.target.value.trim() === "" ? Number.NaN : Number(e.target.value);
      if (range && inRange(n, range, integer)) apply(n);
    },
    onBlur: () => {
      if (!range || !error) return;
      if (Number.isFinite(parsed)) {
        const n = clampToRange(integer ? Math.round(parsed) : parsed, range);
        setText(String(n));
        if (n !== value) apply(n);
      } else {
        setText(format(value));
      }
    },
    "aria-invalid": error ? true : undefined,
  };
  return { props, error, errorId: `${id}-error` };
}

function FieldError({ id, children }: { id: string; children: string | null }) {
  if (!children) return null;
  return (
    <p id={id} role="alert" className="text-xs text-destructive" data-testid={id}>
      {children}
    </p>
  );
}

type MaxTokensFieldProps = Omit<NumberFieldOptions, "integer" | "label"> & { hint: string };

/** Max tokens: a whole number within the model's range. */
export function MaxTokensField({ hint, ...options }: MaxTokensFieldProps) {
  const { props, error, errorId } = useNumberField({ ...options, label: "Max tokens", integer: true });
  const hintId = `${options.id}-hint`;
  return (
    <div className="grid gap-2">
      <Label htmlFor={options.id}>Max tokens</Label>
      <Input {...props} aria-describedby={error ? `${errorId} ${hintId}` : hintId} data-testid={options.id} />
      <FieldError id={errorId}>{error}</FieldError>
      <p id={hintId} className="text-xs text-muted-foreground">
        {hint}
      </p>
    </div>
  );
}

type SliderFieldProps = Omit<NumberFieldOptions, "integer"> & { hint: string; testId: string };

/** A sampling option: a slider and a number input, both within the model's range. */
export function SliderField({ hint, testId, ...options }: SliderFieldProps) {
  const { id, label, value, range, onChange } = options;
  const inputId = `${id}-value`;
  const { props, error, errorId } = useNumberField({ ...options, id: inputId });
  const decimals = range ? stepDecimals(range) : 2;
  const hintId = `${id}-hint`;
  return (
    <div className="grid gap-2.5">
      <div className="flex items-center justify-between gap-2">
        <Label htmlFor={inputId}>{label}</Label>
        <Input
          {...props}
          aria-describedby={error ? `${errorId} ${hintId}` : hintId}
          className="h-7 w-20 text-right text-xs tabular-nums"
          data-testid={testId}
        />
      </div>
      <FieldError id={errorId}>{error}</FieldError>
      <Slider
        value={[value ?? range?.min ?? 0]}
        min={range?.min ?? 0}
        max={range?.max ?? 1}
        step={range?.step ?? 0.01}
        disabled={range === null}
        onValueChange={(v) => {
          if (v[0] !== undefined) onChange(Number(v[0].toFixed(decimals)));
        }}
        thumbLabel={label}
        aria-describedby={hintId}
        data-testid={`${id}-slider`}
      />
      <p id={hintId} className="text-xs text-muted-foreground">
        {hint}
      </p>
    </div>
  );
}
