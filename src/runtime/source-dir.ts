/**
 * Where the TypeScript sources are on disk, for the files the node names by path at run time: a forked
 * actor's module and comedy's child host (loaded by another process), package.json (read).
 *
 * Under tsx every module's `import.meta.url` is its own file. In the bundle bin/ethhook.mjs builds, every
 * module's `import.meta.url` is the bundle's, so the bundle is built with `ETHHOOK_SOURCE_DIR` defined as
 * the absolute path of `src/` (esbuild `define`); without it, `src/` is found from this file.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

declare const ETHHOOK_SOURCE_DIR: string | undefined;

const SOURCE_DIR = typeof ETHHOOK_SOURCE_DIR === 'string' ? ETHHOOK_SOURCE_DIR : fileURLToPath(new URL('../', import.meta.url));

/** The absolute path of `relative`, taken from `src/` (e.g. `actors/deliverer/placed.ts`, `../package.json`). */
export function sourcePath(relative: string): string {
  return join(SOURCE_DIR, relative);
}
