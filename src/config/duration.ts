/**
 * Durations in configuration: a number of milliseconds, or a string with a unit as operators write them
 * in YAML (`500ms`, `10s`, `5m`, `2h`, `1d`, decimals allowed: `1.5s`). Every duration field parses to
 * whole milliseconds, so the rest of the node only ever sees numbers.
 */
import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/;
const DURATION_HINT = 'expected whole milliseconds or a string like "500ms", "10s", "5m", "2h", "1d"';

/** Milliseconds for `"10s"`-style strings; undefined when the string is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION_RE.exec(text);
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** A duration field: non-negative integer ms, or a string with a unit. Parses to ms. */
export function duration() {
  return z.union([z.number(), z.string()], { error: DURATION_HINT }).transform((value, ctx) => {
    const ms = typeof value === 'number' ? value : parseDuration(value);
    if (ms === undefined || !Number.isSafeInteger(ms) || ms < 0) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a duration; ${DURATION_HINT}` });
      return z.NEVER;
    }
    return ms;
  });
}
