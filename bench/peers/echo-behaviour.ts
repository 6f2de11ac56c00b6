/** The behaviour the forked peer places in a child process: it answers each message back. */
import type { Behaviour } from '../../src/runtime/types.ts';

export function echo(): Behaviour {
  return { receive: (msg) => msg };
}
