export type DateGroupKey = "today" | "yesterday" | "week" | "older";

export const DATE_GROUP_LABELS: Record<DateGroupKey, string> = {
  today: "Today",
  yesterday: "Yesterday",
  week: "Previous 7 days",
  older: "Older",
};

const ORDER: DateGroupKey[] = ["today", "yesterday", "week", "older"];

function startOfDay(d: Date): number {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** Parses the backend's timestamps; a value without a zone is taken as UTC. */
export function parseTimestamp(value: string): Date {
  const hasZone = /([zZ]|[+-]\d{2}:?\d{2})$/.test(value);
  return new Date(hasZone ? value : `${value}Z`);
}

/** Which sidebar group a timestamp falls in, by the local calendar day of `now`. */
export function dateGroupOf(date: Date, now: Date = new Date()): DateGroupKey {
  const today = startOfDay(now);
  const day = startOfDay(date);
  const dayMs = 86_400_000;
  if (day >= today) return "today";
  // Days can be 23 or 25 hours long around DST changes, so compare calendar days by rounding.
  const daysAgo = Math.round((today - day) / dayMs);
  if (daysAgo === 1) return "yesterday";
  if (daysAgo <= 7) return "week";
  return "older";
}

export type DateGroup<T> = { key: DateGroupKey; label: string; items: T[] };

/** Groups items (kept in their given order) into Today / Yesterday / Previous 7 days / Older. */
export function groupByDate<T>(
  items: T[],
  getDate: (item: T) => string | Date,
  now: Date = new Date(),
): DateGroup<T>[] {
  const buckets = new Map<DateGroupKey, T[]>();
  for (const item of items) {
    const raw = getDate(item);
    const date = typeof raw === "string" ? parseTimestamp(raw) : raw;
    const key = dateGroupOf(date, now);
    const list = buckets.get(key) ?? [];
    list.push(item);
    buckets.set(key, list);
  }
  return ORDER.filter((k) => buckets.has(k)).map((key) => ({
    key,
    label: DATE_GROUP_LABELS[key],
    items: buckets.get(key) ?? [],
  }));
}
