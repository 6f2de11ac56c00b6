/**
 * Strategies decide which children restart when one fails:
 *   one-for-one  — only the failed child;
 *   one-for-all  — every child (they depend on each other);
 *   rest-for-one — the failed child and every child started after it (later children depend on earlier).
 * The result is in start order; the supervisor stops them in reverse and starts them in this order.
 */
import type { Strategy } from '../runtime/types.ts';

export function childrenToRestart<T>(strategy: Strategy, children: readonly T[], failed: T): T[] {
  const i = children.indexOf(failed);
  if (i < 0) return [];
  switch (strategy) {
    case 'one-for-one':
      return [failed];
    case 'one-for-all':
      return [...children];
    case 'rest-for-one':
      return children.slice(i);
  }
}
