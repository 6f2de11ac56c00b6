// The order of one (subscription, log) under kill -9: a child process enqueues creations and their
// retractions (each follows its creation) while completing and dead-lettering due jobs, and is killed at
// random moments. After reopening, the store alone says what is due: no retraction is due while its
// creation is in the outbox, none is left held behind a creation that left, and the depth counts exactly
// the jobs on disk; draining the reopened outbox hands out every creation before its retraction.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb, sublevel } from '../../src/store/level/db.ts';
import { LevelKv } from '../../src/store/level/kv.ts';
import { type Job } from '../../src/store/outbox/job.ts';
import { LevelOutbox } from '../../src/store/level/outbox/outbox.ts';

const CHILD = new URL('./store-level-outbox-order-crash.child.ts', import.meta.url).pathname;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Runs the child until it has reported `minRounds`, then a random few ms more, then SIGKILLs it. */
function runAndKill(dir: string, minRounds: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let killing = false;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      const lines = d.toString().trim().split('\n');
      if (!killing && Number(lines[lines.length - 1]) >= minRounds) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 15));
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`child exited with ${code}: ${stderr}`));
    });
  });
}

describe('delivery order across kill -9', () => {
  it('after 3 random kills the store holds every retraction behind a creation still there, and only those', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = await mkdtemp(join(tmpdir(), 'ethhook-order-crash-'));
      dirs.push(dir);
      await runAndKill(dir, 5 + round * 5);

      const db = await openDb(dir);
      try {
        const outbox = await LevelOutbox.open(new LevelKv(db));
        const jobs = new Map<string, Job>();
        for await (const job of sublevel<Job>(db, 'outbox-jobs').values()) jobs.set(job.id, job);
        const due = new Set<string>();
        for await (const key of sublevel<string>(db, 'outbox-due').keys()) due.add(key.slice(16));
        const held = new Set<string>();
        for await (const [followed, waiting] of sublevel<Array<{ id: string }>>(db, 'outbox-held').iterator()) {
          expect(jobs.has(followed)).toBe(true);
          for (const w of waiting) held.add(w.id);
        }
        for (const job of jobs.values()) {
          const waits = job.follows !== undefined && jobs.has(job.follows);
          expect({ id: job.id, due: due.has(job.id), held: held.has(job.id) }).toEqual({ id: job.id, due: !waits, held: waits });
        }
        expect(due.size + held.size).toBe(jobs.size);
        expect(outbox.depth()).toBe(jobs.size);

        const order: string[] = [];
        for (let batch = await outbox.due(Date.now() + 1, 1_000); batch.length > 0; batch = await outbox.due(Date.now() + 1, 1_000)) {
          for (const job of batch) {
            order.push(job.id);
            await outbox.complete(job);
          }
        }
        expect(order).toHaveLength(jobs.size);
        for (const id of order) {
          const job = jobs.get(id)!;
          if (job.follows !== undefined && jobs.has(job.follows)) expect(order.indexOf(job.follows)).toBeLessThan(order.indexOf(id));
        }
        await outbox.idle();
      } finally {
        await db.close();
      }
    }
    // Three child processes started under tsx and three drains: a loaded machine needs more than 60 s.
  }, 150_000);
});
