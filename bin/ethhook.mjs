#!/usr/bin/env node
// Runs the node from a bundle of its TypeScript sources built at start (bin/bundle.mjs): plain node, no
// build step between clone and start. ETHHOOK_RUN_SOURCES=1 (or a bundle that cannot be built) runs the
// sources through tsx's loader instead.
//
// V8's young generation may not grow while the process starts (`--semi-space-growth-factor=1`, one of
// the few heap flags V8 reads after start): bundling, loading and building the node's schemas would
// grow it to 16 MB that an idle node then keeps, touched, for a long while. runNode restores V8's
// default growth once the node runs (src/main.ts), so a busy node's young generation grows as before.
//
// The old generation grows by at most half its live size between full collections
// (`--heap-growing-percent=50`, read at every collection): a backlog drains through short-lived jobs and
// requests, and with V8's default factor (up to 4x) the heap grew to ~150 MB of mostly garbage that it
// then kept. Measured on a 30,000-webhook backlog: peak RSS 270 -> 190 MB, the same CPU per webhook.
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--semi-space-growth-factor=1');
setFlagsFromString('--heap-growing-percent=50');

let bundled;
if (process.env.ETHHOOK_RUN_SOURCES !== '1') {
  try {
    const { bundle } = await import('./bundle.mjs');
    bundled = await bundle('src/cli.ts', 'cli');
  } catch (err) {
    process.stderr.write(`ethhook: running the sources through tsx (could not bundle them: ${err instanceof Error ? err.message : String(err)})\n`);
  }
}
if (bundled) {
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(bundled).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
