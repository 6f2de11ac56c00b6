/**
 * The parts of viem the node uses for ABIs, loaded the first time something needs them: a node whose
 * subscriptions carry no abi never loads viem.
 *
 *   await loadViem();        // before parsing an abi or decoding a log: the admin body check, the
 *                            // subscription store, the governance applier, the Matcher's index
 *   viem().parseAbiItem(…);  // synchronous once loaded; throws if nobody loaded it
 *
 * The parts come from their own files, not from `viem/utils`, whose index loads all of viem's utilities
 * (signatures, transactions, ENS, RLP, SIWE, …) and keeps them for the process's life: measured in a bare
 * node 20 process, `import('viem/utils')` adds 22 MB of RSS, these files 9 MB. They are viem's CommonJS
 * build, found beside the `viem/utils` entry its `exports` map names (`_cjs/utils/index.js`: the layout
 * of the published package, not a promise of viem's; the abi tests load them, so an upgrade that moves
 * one fails there), and abitype (parseAbi, parseAbiItem) as viem itself resolves it. Their types are
 * `viem/utils`'s same exports.
 *
 * Memory: the modules, once.
 */
import { createRequire } from 'node:module';

type Utils = typeof import('viem/utils');
type Viem = Pick<Utils, 'parseAbi' | 'parseAbiItem' | 'toEventSelector' | 'toEventSignature' | 'decodeAbiParameters' | 'keccak256'>;

let loaded: Viem | undefined;
let loading: Promise<Viem> | undefined;

/** Loads viem's parts once; later calls resolve with the same module. */
export function loadViem(): Promise<Viem> {
  if (loaded !== undefined) return Promise.resolve(loaded);
  loading ??= Promise.resolve().then(() => (loaded = loadParts()));
  return loading;
}

/** viem, loaded: a caller that parses or decodes awaited `loadViem()` first. */
export function viem(): Viem {
  if (loaded === undefined) throw new Error('viem is not loaded: await loadViem() before parsing an abi or decoding a log');
  return loaded;
}

function loadParts(): Viem {
  const utils = createRequire(createRequire(import.meta.url).resolve('viem/utils'));
  // Each file exports the function of its name (as `viem/utils` re-exports it).
  const { parseAbi, parseAbiItem } = utils('abitype') as Viem;
  const { decodeAbiParameters } = utils('./abi/decodeAbiParameters.js') as Viem;
  const { keccak256 } = utils('./hash/keccak256.js') as Viem;
  const { toEventSelector } = utils('./hash/toEventSelector.js') as Viem;
  const { toEventSignature } = utils('./hash/toEventSignature.js') as Viem;
  return { parseAbi, parseAbiItem, toEventSelector, toEventSignature, decodeAbiParameters, keccak256 };
}
