/**
 * viem's ABI functions (`viem/utils`: parseAbi, parseAbiItem, toEventSelector, toEventSignature,
 * decodeEventLog), loaded the first time something needs them: a node whose subscriptions carry no abi
 * never loads viem, and keeps the ~6 MB of RSS it takes (its code and its tables).
 *
 *   await loadViem();        // before parsing an abi or decoding a log: the admin body check, the
 *                            // subscription store, the governance applier, the Matcher's index
 *   viem().parseAbiItem(…);  // synchronous once loaded; throws if nobody loaded it
 *
 * Memory: the module, once.
 */
type Viem = typeof import('viem/utils');

let loaded: Viem | undefined;
let loading: Promise<Viem> | undefined;

/** Loads viem once; later calls resolve with the same module. */
export function loadViem(): Promise<Viem> {
  if (loaded !== undefined) return Promise.resolve(loaded);
  loading ??= import('viem/utils').then((module) => (loaded = module));
  return loading;
}

/** viem, loaded: a caller that parses or decodes awaited `loadViem()` first. */
export function viem(): Viem {
  if (loaded === undefined) throw new Error('viem is not loaded: await loadViem() before parsing an abi or decoding a log');
  return loaded;
}
