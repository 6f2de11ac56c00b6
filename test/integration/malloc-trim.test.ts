// startMallocTrim gives memory freed between live chunks back to the system (glibc keeps it otherwise),
// in a child process of its own so that nothing else allocates meanwhile.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CHILD = fileURLToPath(new URL('../fixtures/malloc-trim-child.ts', import.meta.url));

describe('malloc_trim', () => {
  it('returns the freed pages of a fragmented native heap to the system', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD], { timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      );
    });
    const { rssBefore, rssAfter, freed } = JSON.parse(out) as { rssBefore: number; rssAfter: number; freed: number | null };
    // 100 MB was freed by the program; glibc kept most of it until the trim.
    expect(freed).not.toBeNull();
    expect(rssBefore - rssAfter).toBeGreaterThan(40 * 1024 * 1024);
  });
});
