// Record ids sort in creation order, also within one millisecond and when the clock steps back.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newId } from '../../src/store/ids.ts';

describe('newId', () => {
  it('has the prefix and 26 Crockford base32 characters', () => {
    expect(newId('ep_')).toMatch(/^ep_[0-9a-hjkmnp-tv-z]{26}$/);
  });

  it('sorts in creation order for any sequence of clock readings', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1_600_000_000_000, max: 1_600_000_000_050 }), { minLength: 2, maxLength: 200 }), (times) => {
        const ids = times.map((t) => newId('sub_', t));
        expect([...ids].sort()).toEqual(ids);
        expect(new Set(ids).size).toBe(ids.length);
      }),
    );
  });

  it('many ids in the same millisecond keep their order', () => {
    const ids = Array.from({ length: 5000 }, () => newId('sub_', 1_900_000_000_000));
    expect([...ids].sort()).toEqual(ids);
  });
});
