// The error catalog is the one list of codes: every code the sources use is in it, each exactly once.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG } from '../../src/errors.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : /\.(ts|cjs|mjs)$/.test(f) ? [p] : [];
  });
}

describe('error catalog', () => {
  it('holds every ETHHOOK_ERR_ code used in src/ and bin/, with a summary and an HTTP status', () => {
    const known = new Set(ERROR_CATALOG.map((e) => e.code));
    const used = new Set<string>();
    for (const file of [...sources('src'), ...sources('bin')]) {
      for (const m of readFileSync(file, 'utf8').matchAll(/ETHHOOK_ERR_[A-Z0-9_]*[A-Z0-9]/g)) used.add(m[0]);
    }
    expect([...used].filter((c) => !known.has(c))).toEqual([]);
    for (const e of ERROR_CATALOG) {
      expect(e.summary.length).toBeGreaterThan(5);
      expect(e.httpStatus).toBeGreaterThanOrEqual(400);
    }
  });
});
