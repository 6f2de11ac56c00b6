#!/usr/bin/env node
// Runs the node from a bundle of its TypeScript sources built at start (bin/bundle.mjs): plain node, no
// build step between clone and start. ETHHOOK_RUN_SOURCES=1 runs the sources through tsx's loader
// instead, and only then: a bundle that cannot be built stops the command (exit 1, one JSON log line with
// the cause), so a node never runs another way than the one its operator chose. Forked and threaded
// actors always load their sources through tsx in their own process (src/runtime/placement/README.md).
//
// The V8 heap flags the node runs with are set first: which and why, src/v8-flags.mjs.
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { START_V8_FLAGS } from '../src/v8-flags.mjs';

for (const flag of START_V8_FLAGS) setFlagsFromString(flag);

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
  // Stack traces name the bundle's lines; with NODE_OPTIONS=--enable-source-maps they name the .ts files
  // (the bundle's map is a file beside it: bin/bundle.mjs says why it is not read by default).
  await import(pathToFileURL(bundled).href);
}
