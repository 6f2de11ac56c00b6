// Batch atomicity under kill -9: a child process enqueues 200-job batches with a marker op in the same
// batch; it is killed at random moments; after reopening, every batch is there whole (marker, 200 jobs,
// 200 due entries) or not at all, and the outbox's depth counts exactly the jobs on disk.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb, sublevel } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';

const CHILD = new URL('./store-level-outbox-crash.child.ts', import.meta.url).pathname;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Runs the child until it has committed `minBatches`, then a random few ms more, then SIGKILLs it. */
function runAndKill(dir: string, minBatches: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let last = -1;
    let killing = false;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      const lines = d.toString().trim().split('\n');
      last = Number(lines[lines.length - 1]);
      if (!killing && last >= minBatches) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 15));
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(last);
      else reject(new Error(`child exited with ${code}: ${stderr}`));
    });
  });
}

describe('outbox batch atomicity across kill -9', () => {
  it('every batch is whole or absent after 3 random kills', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = await mkdtemp(join(tmpdir(), 'ethhook-crash-'));
      dirs.push(dir);
      const lastReported = await runAndKill(dir, 15 + round * 10);

      const db = await openDb(dir);
      try {
        const outbox = await LevelOutbox.open(new LevelKv(db));
        const markers = new Set<number>();
        for await (const v of sublevel<number>(db, 'test-markers').values()) markers.add(v);
        const jobsPerBatch = new Map<number, number>();
        for await (const id of sublevel<unknown>(db, 'outbox-jobs').keys()) {
          const b = Number(/^msg_b(\d+)_/.exec(id)![1]);
          jobsPerBatch.set(b, (jobsPerBatch.get(b) ?? 0) + 1);
        }
        let dueEntries = 0;
        for await (const _ of sublevel<unknown>(db, 'outbox-due').keys()) dueEntries++;

        // Everything the child reported as committed is there; nothing is half there.
        for (let b = 0; b <= lastReported; b++) expect(markers.has(b)).toBe(true);
        for (const [b, n] of jobsPerBatch) {
          expect(n).toBe(200);
          expect(markers.has(b)).toBe(true);
        }
        for (const b of markers) expect(jobsPerBatch.get(b)).toBe(200);
        expect(dueEntries).toBe(markers.size * 200);
        expect(outbox.depth()).toBe(markers.size * 200);
      } finally {
        await db.close();
      }
    }
  });
});
