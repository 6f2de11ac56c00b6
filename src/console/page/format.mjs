/** Small formatting helpers shared by the console's panels. */

export const num = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));

export const ago = (when) => {
  if (when === null || when === undefined) return '–';
  const ms = typeof when === 'string' ? Date.parse(when) : when;
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
};

export const time = (ms) => (ms === null || ms === undefined ? '–' : new Date(ms).toLocaleTimeString());

/** `{ manual: 2, panic: 1 }` as `manual 2 · panic 1`. */
export const byReason = (counts) =>
  Object.entries(counts ?? {})
    .map(([reason, n]) => `${reason} ${n}`)
    .join(' · ');

export const errorText = (err) => `${err.status ? `${err.status} ` : ''}${err.code}: ${err.message}`;
