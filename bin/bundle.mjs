/**
 * Bundles the node's TypeScript sources into one ES module with esbuild, so the node runs on plain
 * `node`: no module loader (tsx's hooks run in a thread with a V8 isolate of its own, ~35 MB of RSS) and
 * no per-module transform at start. Every start checks it against the sources, so it is never stale and
 * nothing needs building between clone and start.
 *
 * - npm packages stay external, imported from node_modules as installed (the bundle is written under
 *   node_modules/.cache/ethhook/, from where their bare names resolve), but those in BUNDLED_PACKAGES:
 *   zod, plain ES modules with no files of their own to find at run time. Loaded from node_modules, its
 *   ~90 modules kept 0.85 MB of source text, comments included, in the node's heap for its whole life,
 *   0.34 MB of it the translations of its error messages into 60-odd languages, which zod loads as
 *   `z.locales` whether or not one is used. Bundled, its code is whitespace-minified with ours, and the
 *   translations' index is an empty module (`ZOD_LOCALES`): the node never selects a language, and zod
 *   loads its English messages from a file of their own (`locales/en.js`), which stays. A bare node's
 *   V8 heap in use: 17.2-17.9 -> 16.3-16.8 MB.
 * - `ETHHOOK_SOURCE_DIR` is defined as the absolute `src/` (see src/runtime/source-dir.ts): files handed to
 *   other processes by path (a forked actor's module) are still found.
 * - Source maps: the map is a file beside the bundle (`<bundle>.map`, named in its last line), read only
 *   when node runs with `--enable-source-maps` (`NODE_OPTIONS=--enable-source-maps npm start`): stack
 *   traces then name the .ts files and their lines. bin/ethhook.mjs does not turn them on itself: parsing
 *   the map at start left a bare node ~2.5 MB more RSS, kept for its whole life, and Node documents that
 *   every `Error.stack` costs more with them. Not inline: V8 keeps a module's source text for its whole
 *   life, and an inline map's base64 would stay in it (~1.3 MB). The map carries no `sourcesContent`
 *   (stack traces need only the mappings) and the code is whitespace-minified, which also drops the
 *   comments: one non-ASCII character in a kept comment made V8 hold the whole module source as a
 *   two-byte string.
 * - esbuild's service process is stopped once the bundle is built (`stop()`): it would otherwise live
 *   beside the node for its whole life (~40 MB of RSS).
 * - The file is named by a hash of what it is built from: every file under src/ (and, for an entry
 *   outside it, under the entry's top folder: a benchmark's bench/), tsconfig.json, the package.json of
 *   each package bundled in as installed (its version), this file (the options) and esbuild's version
 *   (read from its package.json). A start whose sources have not changed since the last one finds its
 *   bundle and does not load esbuild at all (hashing the sources takes a few ms, loading esbuild's
 *   module ~60 ms, a build ~0.8 s of CPU); any change to a source makes a new name, so a bundle is never
 *   stale.
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

/** The npm packages bundled in; every other stays external (see the header). */
export const BUNDLED_PACKAGES = new Set(['zod']);
/** zod's index of its translations (see the header): bundled as an empty module. */
const ZOD_LOCALES = /[\\/]node_modules[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/;

/** An esbuild plugin: npm packages external but BUNDLED_PACKAGES, and zod's translations left out. */
const packages = {
  name: 'ethhook-packages',
  setup(build) {
    // A bare specifier (neither relative nor absolute) names a package, or a Node builtin (`node:fs`).
    build.onResolve({ filter: /^[^./]/ }, ({ path }) => {
      const name = path.split('/', path.startsWith('@') ? 2 : 1).join('/');
      return BUNDLED_PACKAGES.has(name) ? undefined : { path, external: true };
    });
    build.onLoad({ filter: ZOD_LOCALES }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};

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
      plugins: [packages],
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
  for (const name of BUNDLED_PACKAGES) hash.update(await readFile(require.resolve(`${name}/package.json`)));
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
