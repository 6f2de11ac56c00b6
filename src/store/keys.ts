/**
 * Key building blocks shared by the store's spaces, on either engine. Keys order bytewise (LevelDB's
 * order, and PostgreSQL's under `COLLATE "C"`), so numbers that must sort numerically are zero-padded
 * to a fixed width; `!` separates key parts (ids never hold it); `\xff` closes a prefix range.
 */

/** Ms timestamps (and block numbers) up to 10^15 - 1, clamped into range so keys stay fixed-width. */
export function padNumber(n: number, width = 15): string {
  const max = 10 ** width - 1;
  const v = Math.min(Math.max(0, Math.floor(n)), max);
  return String(v).padStart(width, '0');
}

export const PREFIX_END = '\xff';
