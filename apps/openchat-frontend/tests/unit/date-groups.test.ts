import { describe, expect, it } from "vitest";

import { dateGroupOf, groupByDate, parseTimestamp } from "@/lib/date-groups";

const now = new Date(2026, 10, 26, 15, 30); // 26 Nov 2026, 15:30 local time

function daysAgo(n: number, hour = 12): Date {
  return new Date(2026, 10, 26 - n, hour, 0);
}

describe("dateGroupOf", () => {
  it("puts each day in the right bucket", () => {
    expect(dateGroupOf(new Date(2026, 10, 26, 0, 1), now)).toBe("today");
    expect(dateGroupOf(daysAgo(0, 23), now)).toBe("today"); // later today (clock skew)
    expect(dateGroupOf(daysAgo(1, 23), now)).toBe("yesterday");
    expect(dateGroupOf(daysAgo(1, 0), now)).toBe("yesterday");
    expect(dateGroupOf(daysAgo(2), now)).toBe("week");
    expect(dateGroupOf(daysAgo(7), now)).toBe("week");
    expect(dateGroupOf(daysAgo(8), now)).toBe("older");
    expect(dateGroupOf(new Date(2024, 0, 1), now)).toBe("older");
  });

  it("uses calendar days, not 24-hour windows", () => {
    const earlyMorning = new Date(2026, 10, 26, 0, 30);
    expect(dateGroupOf(new Date(2026, 10, 25, 23, 59), earlyMorning)).toBe("yesterday");
  });
});

describe("groupByDate", () => {
  it("groups in display order and keeps item order", () => {
    const items = [
      { id: "a", at: daysAgo(0) },
      { id: "b", at: daysAgo(0, 9) },
      { id: "c", at: daysAgo(1) },
      { id: "d", at: daysAgo(30) },
      { id: "e", at: daysAgo(3) },
    ];
    const groups = groupByDate(items, (i) => i.at, now);
    expect(groups.map((g) => [g.label, g.items.map((i) => i.id)])).toEqual([
      ["Today", ["a", "b"]],
      ["Yesterday", ["c"]],
      ["Previous 7 days", ["e"]],
      ["Older", ["d"]],
    ]);
  });

  it("omits empty groups", () => {
    expect(groupByDate([], (x: { at: Date }) => x.at, now)).toEqual([]);
  });

  it("reads ISO strings, with or without a zone", () => {
    expect(parseTimestamp("2026-11-26T10:00:00Z").toISOString()).toBe("2026-11-26T10:00:00.000Z");
    expect(parseTimestamp("2026-11-26T10:00:00").toISOString()).toBe("2026-11-26T10:00:00.000Z");
    expect(parseTimestamp("2026-11-26T10:00:00+02:00").toISOString()).toBe("2026-11-26T08:00:00.000Z");
  });
});
