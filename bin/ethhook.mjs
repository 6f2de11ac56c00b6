#!/usr/bin/env node
// Runs the node from a bundle of its TypeScript sources built at start (bin/bundle.mjs): plain node, no
// build step between clone and start. ETHHOOK_RUN_SOURCES=1 runs the sources through tsx's loader
// instead, and only then: a bundle that cannot be built stops the command (exit 1, one JSON log line with
// the cause), so a node never runs another way than the one its operator chose. Forked and threaded
// actors always load their sources through tsx in their own process (src/runtime/placement/README.md).
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

const EXIT_FAILURE = 1;

if (process.env.ETHHOOK_RUN_SOURCES === '1') {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
} else {
  let bundled;
  try {
    const { bundle } = await import('./bundle.mjs');
    bundled = await bundle('src/cli.ts', 'cli');
  } catch (err) {
    // The node's logger lives in the sources that could not be bundled: this line has pino's shape.
    const line = {
      level: 60,
      time: Date.now(),
      pid: process.pid,
      code: 'ETHHOOK_ERR_BUNDLE',
      err: { message: err instanceof Error ? err.message : String(err) },
      msg: 'could not bundle the sources (bin/bundle.mjs); fix the cause, or set ETHHOOK_RUN_SOURCES=1 to run them through tsx',
    };
    process.stderr.write(`${JSON.stringify(line)}\n`);
    process.exit(EXIT_FAILURE);
  }
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(bundled).href);
}
