/**
 * The console page's files, served by the node itself (operators run nodes in closed networks: no CDN).
 *
 * - `page/app.mjs` and what it imports (its modules, `page/console.css`, Preact, htm and uPlot with its
 *   stylesheet, all from node_modules) are bundled by esbuild, the node's own dependency, into one
 *   script and one stylesheet, minified. Nothing is built by hand: the bundle is made on the first
 *   request for a console file and kept in memory for the life of the process (~100 KB); a node whose
 *   console nobody opens never builds it. esbuild's service process is stopped once it is built.
 * - Files are named by a hash of their content (`app-<hash>.js`, `app-<hash>.css`): `page/index.html`
 *   names them, so the page may be cached for good (`immutable`) and the index never (`no-cache`).
 * - The script is a file, never inline, and the page loads nothing from elsewhere: the
 *   Content-Security-Policy (`CONSOLE_CSP`) allows only the node's own origin.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { sourcePath } from '../runtime/source-dir.ts';

export interface ConsoleFile {
  body: string;
  contentType: string;
  /** `immutable` for hashed names, `no-cache` for the index. */
  cacheControl: string;
}

export interface ConsoleFiles {
  index: ConsoleFile;
  /** By name under /console/assets/. */
  assets: ReadonlyMap<string, ConsoleFile>;
}

/** Only this origin: scripts and styles from files, requests to the admin API, images inline (uPlot's legend markers). */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const IMMUTABLE = 'public, max-age=31536000, immutable';

let built: Promise<ConsoleFiles> | null = null;

/** The console's files, bundled on first use (see the header). A failed build is tried again next time. */
export function consoleFiles(): Promise<ConsoleFiles> {
  built ??= buildFiles().catch((err: unknown) => {
    built = null;
    throw err;
  });
  return built;
}

async function buildFiles(): Promise<ConsoleFiles> {
  const esbuild = await import('esbuild');
  let outputs: { path: string; text: string }[];
  try {
    const result = await esbuild.build({
      entryPoints: [sourcePath('console/page/app.mjs')],
      bundle: true,
      write: false,
      outdir: 'console',
      format: 'esm',
      platform: 'browser',
      target: ['chrome120', 'firefox120'],
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
    });
    outputs = result.outputFiles.map((f) => ({ path: f.path, text: f.text }));
  } finally {
    await esbuild.stop();
  }
  const assets = new Map<string, ConsoleFile>();
  const named = (ext: 'js' | 'css', contentType: string) => {
    const out = outputs.find((o) => o.path.endsWith(`.${ext}`));
    if (out === undefined) throw new Error(`the console bundle has no .${ext} output`);
    const name = `app-${createHash('sha256').update(out.text).digest('hex').slice(0, 12)}.${ext}`;
    assets.set(name, { body: out.text, contentType, cacheControl: IMMUTABLE });
    return name;
  };
  const script = named('js', 'text/javascript; charset=utf-8');
  const style = named('css', 'text/css; charset=utf-8');
  const template = await readFile(sourcePath('console/page/index.html'), 'utf8');
  const html = template.replace('{{script}}', `/console/assets/${script}`).replace('{{style}}', `/console/assets/${style}`);
  return { index: { body: html, contentType: 'text/html; charset=utf-8', cacheControl: 'no-cache' }, assets };
}
