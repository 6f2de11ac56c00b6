/**
 * Runs a benchmark the way the node runs (bin/ethhook.mjs): bundled by bin/bundle.mjs and executed on
 * plain `node` (its source map read only with NODE_OPTIONS=--enable-source-maps, as for the node), not
 * through tsx (whose transform adds a `__name` call to every closure it creates, and whose loader
 * thread adds RSS). `npm run bench:*` starts a bench under tsx;
 * `asShipped(import.meta.url)` then bundles that file, runs the bundle as a child with the same
 * arguments, environment and stdio, and resolves true (the caller returns: the child did the work).
 * In the bundle, or with BENCH_SOURCES=1, it resolves false and the bench runs here.
 * `bundleBench(import.meta.url)` only builds the bundle and resolves with its path (bench:match runs it
 * next to a tsx run of the sources).
 */
import { spawn } from 'node:child_process';
import { relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export async function asShipped(benchUrl: string): Promise<boolean> {
  if (!benchUrl.endsWith('.ts') || process.env.BENCH_SOURCES === '1') return false;
  const file = await bundleBench(benchUrl);
  const child = spawn(process.execPath, [file, ...process.argv.slice(2)], { stdio: 'inherit' });
  const code = await new Promise<number>((resolve) => child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  process.exitCode = code;
  return true;
}

/** Bundles the bench at `benchUrl` as bin/ethhook.mjs bundles the node; resolves with the bundle's path. */
export async function bundleBench(benchUrl: string): Promise<string> {
  const root = fileURLToPath(new URL('../', import.meta.url));
  const { bundle } = (await import(pathToFileURL(`${root}bin/bundle.mjs`).href)) as {
    bundle: (entry: string, name: string) => Promise<string>;
  };
  const source = fileURLToPath(benchUrl);
  return bundle(
    relative(root, source),
    `bench-${relative(`${root}bench`, source)
      .replace(/\.bench\.ts$/, '')
      .replace(/[^\w-]/g, '-')}`,
  );
}

/** The execArgv a bench's own child processes need to load the same file: tsx for a .ts file, nothing for a bundle. */
export function execArgvFor(fileUrl: string): string[] {
  return fileUrl.endsWith('.ts') ? ['--import', 'tsx'] : [];
}
