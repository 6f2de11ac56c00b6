#!/usr/bin/env node
// Runs the node from a bundle of its TypeScript sources built at start (bin/bundle.mjs): plain node, no
// build step between clone and start. ETHHOOK_RUN_SOURCES=1 (or a bundle that cannot be built) runs the
// sources through tsx's loader instead.
import { pathToFileURL } from 'node:url';

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
