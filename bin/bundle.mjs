/**
 * Bundles the node's TypeScript sources into one ES module with esbuild, so the node runs on plain
 * `node`: no module loader (tsx's hooks run in a thread with a V8 isolate of its own, ~35 MB of RSS) and
 * no per-module transform at start. Every start checks it against the sources, so it is never stale and
 * nothing needs building between clone and start.
 *
 * - npm packages stay external, imported from node_modules as installed: the bundle is written under
 *   node_modules/.cache/ethhook/, from where their bare names resolve.
 * - `ETHHOOK_SOURCE_DIR` is defined as the absolute `src/` (see src/runtime/source-dir.ts): files handed to
 *   other processes by path (a forked actor's module) are still found.
 * - Source maps: with `process.setSourceMapsEnabled(true)` stack traces name the .ts files. The map is
 *   a file beside the bundle (`<bundle>.map`, named in its last line), not inline: V8 keeps a module's
 *   source text for its whole life, and an inline map's base64 would stay in it (and in a copy Node
 *   extracts), ~1.3 MB of the node's heap. The map carries no `sourcesContent` (stack traces need only
 *   the mappings; the node keeps the map it parsed for its whole life) and the code is
 *   whitespace-minified, which also drops the comments: one non-ASCII character in a kept comment made
 *   V8 hold the whole module source as a two-byte string.
 * - esbuild's service process is stopped once the bundle is built (`stop()`): it would otherwise live
 *   beside the node for its whole life (~40 MB of RSS).
 * - The file is named by a hash of what it is built from: every file under src/ (and, for an entry
 *   outside it, under the entry's top folder: a benchmark's bench/), tsconfig.json, this file (the
 *   options) and esbuild's version (read from its package.json). A start whose sources have not changed
 *   since the last one finds its bundle and does not load esbuild at all (hashing the sources takes a
 *   few ms, loading esbuild's module ~60 ms, a build ~0.8 s of CPU); any change to a source makes a new
 *   name, so a bundle is never stale.
 * - A new bundle is written to a temp file then renamed, its map first: nodes started at once from one
 *   checkout share them and never read a half-written one. Older bundles of the same name and their
 *   maps are removed (best effort).
 */
import { createHash } from 'node:crypto';
import { access, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
export const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'ethhook');

/** Bundles `entry` (a path from the project root) and resolves with the bundle's absolute path. */
export async function bundle(entry, name) {
  const { version } = JSON.parse(await readFile(require.resolve('esbuild/package.json'), 'utf8'));
  const file = join(CACHE_DIR, `${name}-${await sourceKey(entry, version)}.mjs`);
  if (await exists(file)) return file;
  const esbuild = await import('esbuild');
  let result;
  try {
    result = await esbuild.build({
      entryPoints: [join(ROOT, entry)],
      bundle: true,
      write: false,
      // Where the bundle is written: the source map's paths are relative to it, so stack traces name the
      // real .ts files, and its last line names the map beside it.
      outfile: file,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap: 'linked',
      sourcesContent: false,
      minifyWhitespace: true,
      logLevel: 'silent',
      define: { ETHHOOK_SOURCE_DIR: JSON.stringify(join(ROOT, 'src')) },
    });
  } finally {
    await esbuild.stop();
  }
  await mkdir(CACHE_DIR, { recursive: true });
  const output = (path) => result.outputFiles.find((f) => f.path === path).contents;
  // The map first: a bundle that exists has its map.
  for (const path of [`${file}.map`, file]) {
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, output(path));
    await rename(temp, path);
  }
  await removeOlder(name, file);
  return file;
}

/** 16 hex digits of a SHA-256 over everything the bundle of `entry` is built from (see the header). */
async function sourceKey(entry, esbuildVersion) {
  const hash = createHash('sha256');
  for (const part of [ROOT, entry, esbuildVersion]) hash.update(`${part}\0`);
  hash.update(await readFile(fileURLToPath(import.meta.url)));
  hash.update(await readFile(join(ROOT, 'tsconfig.json')));
  // src/, and the folder of an entry outside it (a benchmark's bench/: its own modules).
  const top = entry.split(/[\\/]/)[0];
  const folders = top === 'src' || top === entry ? ['src'] : ['src', top];
  for (const folder of folders) {
    const dir = join(ROOT, folder);
    const files = (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((d) => d.isFile())
      .map((d) => join(d.parentPath ?? d.path, d.name))
      .sort();
    for (const path of files) {
      hash.update(`\0${relative(ROOT, path)}\0`);
      hash.update(await readFile(path));
    }
  }
  return hash.digest('hex').slice(0, 16);
}

async function exists(file) {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

async function removeOlder(name, keep) {
  try {
    for (const entry of await readdir(CACHE_DIR)) {
      const path = join(CACHE_DIR, entry);
      const bundleOrMap = entry.endsWith('.mjs') || entry.endsWith('.mjs.map');
      if (path !== keep && path !== `${keep}.map` && entry.startsWith(`${name}-`) && bundleOrMap) await rm(path, { force: true });
    }
  } catch {
    // Housekeeping only: a leftover bundle costs disk space, nothing else.
  }
}
