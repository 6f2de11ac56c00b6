/**
 * Placement through comedy, with real child processes and worker threads: the placed behaviour proxy is
 * driven directly with a hand-made context (the kernel-level test is placement-supervised.test.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isEthhookError } from '../../src/runtime/errors.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { createPlacedBehaviour, type PlacedBehaviour, type PlacedSpec } from '../../src/runtime/placement/index.ts';
import type { ActorContext, ActorRef } from '../../src/runtime/types.ts';
import type { ProbeArgs } from '../fixtures/placement-behaviours.ts';
import { isAlive } from '../support/kernel.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/placement-behaviours.ts', import.meta.url));
const logger = createLogger({ level: 'silent' });
const scratch = mkdtempSync(join(tmpdir(), 'ethhook-placement-'));
const live: PlacedBehaviour[] = [];

afterEach(async () => {
  await Promise.all(live.splice(0).map(async (b) => b.postStop?.(undefined as never)));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Recorded {
  ctx: ActorContext;
  fails: Array<{ error: unknown; reason: string | undefined }>;
  told: unknown[];
  asked: Array<{ target: string; msg: unknown }>;
}

function handMadeContext(path = '/test/probe'): Recorded {
  const rec: Recorded = { fails: [], told: [], asked: [], ctx: undefined as never };
  const self: ActorRef = {
    path,
    name: 'probe',
    tell: (msg) => (rec.told.push(msg), true),
    send: async (msg) => void rec.told.push(msg),
    ask: async () => undefined as never,
  };
  rec.ctx = {
    self,
    path,
    name: 'probe',
    log: logger,
    incarnation: 1,
    lookup: <T>(target: string) =>
      target === '/test/other'
        ? ({ ...self, path: target, ask: async (msg: unknown) => (rec.asked.push({ target, msg }), { from: target }) } as ActorRef<T>)
        : undefined,
    fail: (error, reason) => void rec.fails.push({ error, reason }),
    stopSelf: () => {},
  };
  return rec;
}

async function started(mode: PlacedSpec['mode'], args: ProbeArgs = { label: 'p' }, exportName = 'probe') {
  const rec = handMadeContext();
  const behaviour = createPlacedBehaviour({ mode, module: FIXTURES, exportName, args }, { logger });
  live.push(behaviour);
  await behaviour.preStart!(rec.ctx);
  return { behaviour, ...rec, receive: (msg: unknown) => behaviour.receive(msg, rec.ctx) as Promise<unknown> };
}

/** Live child processes of this process, from /proc (the kernel's view, not comedy's). */
function childPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return Number(fields[1]) === process.pid && fields[0] !== 'Z';
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('forked placement', () => {
  // start: the behaviour runs in another process, built from the module's factory, preStart run.
  it('runs the behaviour in a child process', async () => {
    const { behaviour, receive } = await started('forked');
    const pid = behaviour.pid()!;
    expect(pid).not.toBe(process.pid);
    expect(isAlive(pid)).toBe(true);
    expect(childPids()).toContain(pid);
    expect(await receive({ type: 'where' })).toMatchObject({ pid, started: true, incarnation: 1, path: '/test/probe' });
  });

  // ordering: asks are answered with the child's return values, in the order they were sent.
  it('answers asks in order with the child return values', async () => {
    const { receive } = await started('forked', { label: 'fifo' });
    for (let i = 1; i <= 50; i++) expect(await receive({ type: 'echo', value: i })).toEqual({ label: 'fifo', n: i, value: i });
    const burst = await Promise.all(Array.from({ length: 50 }, (_, i) => receive({ type: 'echo', value: i })));
    expect(burst.map((r) => (r as { n: number }).n)).toEqual(Array.from({ length: 50 }, (_, i) => 51 + i));
  });

  // panics: a handler that throws in the child rejects the receive, keeping name, code and context.
  it('rejects the receive when the child handler throws', async () => {
    const { receive } = await started('forked');
    await expect(receive({ type: 'boom', message: 'bad input' })).rejects.toThrow('bad input');
    const coded = await receive({ type: 'coded-boom' }).catch((e: unknown) => e);
    expect(isEthhookError(coded, 'ETHHOOK_ERR_PLACEMENT')).toBe(true);
    expect((coded as { context: object }).context).toMatchObject({ detail: 42, actor: '/test/probe', placement: 'forked' });
    expect(await receive({ type: 'echo', value: 'still here' })).toMatchObject({ value: 'still here' });
  });

  // crash: kill -9 of the child is reported once through ctx.fail(..., 'crash'); in-flight work rejects.
  it('reports kill -9 of the child as a crash, once', async () => {
    const { behaviour, receive, fails } = await started('forked');
    const pid = behaviour.pid()!;
    const inflight = receive({ type: 'slow', ms: 30_000 });
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    await expect(inflight).rejects.toMatchObject({ code: 'ETHHOOK_ERR_ACTOR_CRASH' });
    await waitFor(() => fails.length > 0, 5_000, 'ctx.fail');
    expect(Date.now() - t0).toBeLessThan(3_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(fails).toHaveLength(1);
    expect(fails[0]!.reason).toBe('crash');
    expect(fails[0]!.error).toMatchObject({ code: 'ETHHOOK_ERR_ACTOR_CRASH', context: { pid, signal: 'SIGKILL' } });
    expect(behaviour.pid()).toBeNull();
    await expect(receive({ type: 'echo', value: 1 })).rejects.toMatchObject({ code: 'ETHHOOK_ERR_ACTOR_CRASH' });
    expect((await behaviour.health!()).ok).toBe(false);
  });

  // stop: postStop runs the child's postStop, then the process is gone; stopping twice is harmless.
  it('postStop runs the child postStop and leaves no process behind', async () => {
    const marker = join(scratch, 'forked-stopped');
    const { behaviour, ctx } = await started('forked', { label: 's', postStopMarker: marker });
    const pid = behaviour.pid()!;
    await behaviour.postStop!(ctx);
    expect(readFileSync(marker, 'utf8')).toBe(String(pid));
    expect(isAlive(pid)).toBe(false);
    expect(childPids()).not.toContain(pid);
    expect(behaviour.pid()).toBeNull();
    await behaviour.postStop!(ctx);
    await expect(behaviour.receive({ type: 'echo' }, ctx)).rejects.toMatchObject({ code: 'ETHHOOK_ERR_ACTOR_STOPPED' });
  });

  // comedy adds a process 'exit' listener per forked child: each child raises the listener limit by
  // one while it lives, so eleven children do not trip Node's leak warning.
  it('raises the process listener limit by one per live forked child, and lowers it when it stops', async () => {
    const before = process.getMaxListeners();
    const exitListeners = process.listenerCount('exit');
    const { behaviour, ctx } = await started('forked', { label: 'l' });
    expect(process.getMaxListeners()).toBe(before + 1);
    expect(process.listenerCount('exit')).toBe(exitListeners + 1);
    await behaviour.postStop!(ctx);
    expect(process.getMaxListeners()).toBe(before);
    expect(process.listenerCount('exit')).toBe(exitListeners);
  });

  // stop fallback: a child whose postStop never returns is SIGKILLed within the stop timeout.
  it('kills a child that does not stop in time', async () => {
    const { ctx } = handMadeContext();
    const behaviour = createPlacedBehaviour(
      { mode: 'forked', module: FIXTURES, exportName: 'stuckStop' },
      { logger, stopTimeoutMs: 1_500 },
    );
    await behaviour.preStart!(ctx);
    const pid = behaviour.pid()!;
    const t0 = Date.now();
    await behaviour.postStop!(ctx);
    expect(Date.now() - t0).toBeLessThan(2_500);
    expect(isAlive(pid)).toBe(false);
  });

  // restart: preRestart (what the kernel calls instead of postStop on a restart) also ends the child.
  it('preRestart ends the child too', async () => {
    const { behaviour, ctx } = await started('forked');
    const pid = behaviour.pid()!;
    await behaviour.preRestart!('manual', new Error('operator'), ctx);
    expect(isAlive(pid)).toBe(false);
  });

  // context: the child's self, lookup and fail reach the parent's context.
  it('forwards the child context calls to the parent', async () => {
    const { receive, told, asked, fails } = await started('forked');
    expect(await receive({ type: 'tell-self', value: 7 })).toBe(true);
    await waitFor(() => told.length > 0, 5_000, 'self.tell');
    expect(told).toEqual([{ type: 'echo', value: 7 }]);
    expect(await receive({ type: 'ask-other', target: '/test/other', msg: { q: 1 } })).toEqual({ from: '/test/other' });
    expect(asked).toEqual([{ target: '/test/other', msg: { q: 1 } }]);
    await expect(receive({ type: 'ask-other', target: '/nope', msg: {} })).rejects.toMatchObject({ code: 'ETHHOOK_ERR_ACTOR_NOT_FOUND' });
    await receive({ type: 'fail' });
    await waitFor(() => fails.length > 0, 5_000, 'ctx.fail');
    expect(fails[0]).toMatchObject({ reason: 'health', error: { message: 'asked to fail' } });
  });

  // start failures: a bad export or a throwing preStart reject preStart, and no child is left.
  it('rejects preStart when the child cannot build or start the behaviour', async () => {
    const before = childPids();
    const expected = {
      missing: 'no function export "missing"',
      notABehaviour: 'did not return a behaviour',
      failingStart: 'preStart refused',
    };
    for (const [exportName, why] of Object.entries(expected)) {
      const behaviour = createPlacedBehaviour({ mode: 'forked', module: FIXTURES, exportName }, { logger });
      const err = await Promise.resolve(behaviour.preStart!(handMadeContext().ctx)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, exportName).toMatchObject({ code: 'ETHHOOK_ERR_PLACEMENT' });
      expect((err as Error).message).toContain(why);
      expect(behaviour.pid()).toBeNull();
    }
    await waitFor(() => childPids().every((p) => before.includes(p)), 5_000, 'failed children to exit');
  });

  // spec validation: rejected before anything starts.
  it('rejects an invalid spec', () => {
    expect(() => createPlacedBehaviour({ mode: 'forked', module: 'relative/path.ts', exportName: 'probe' }, { logger })).toThrow(
      expect.objectContaining({ code: 'ETHHOOK_ERR_INVALID_SPEC' }),
    );
    expect(() => createPlacedBehaviour({ mode: 'remote' as 'forked', module: FIXTURES, exportName: 'probe' }, { logger })).toThrow(
      expect.objectContaining({ code: 'ETHHOOK_ERR_INVALID_SPEC' }),
    );
  });
});

describe('forked child lifetime', () => {
  // signals: the parent owns the child's life; SIGINT/SIGTERM sent to the group do not end the child.
  it('ignores SIGINT and SIGTERM, leaving the stop to the parent', async () => {
    const { behaviour, receive, fails } = await started('forked');
    const pid = behaviour.pid()!;
    process.kill(pid, 'SIGINT');
    process.kill(pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(await receive({ type: 'echo', value: 'alive' })).toMatchObject({ value: 'alive' });
    expect(fails).toEqual([]);
  });

  // orphans: when the parent dies with kill -9, its forked child exits on its own within seconds.
  it('exits when its parent is killed', async () => {
    const parentScript = fileURLToPath(new URL('../fixtures/placement-parent.ts', import.meta.url));
    const parent = spawn(process.execPath, ['--import', 'tsx', parentScript], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: parent.stdout }).once('line', resolve);
        parent.once('exit', (code) => reject(new Error(`parent exited early (${code})`)));
      });
      const { childPid } = JSON.parse(line) as { childPid: number };
      expect(isAlive(childPid)).toBe(true);
      parent.kill('SIGKILL');
      await waitFor(() => !isAlive(childPid), 5_000, 'the orphaned child to exit');
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('threaded placement', () => {
  // start: the behaviour runs in a worker thread of this process.
  it('runs the behaviour in a worker thread and answers in order', async () => {
    const { behaviour, receive } = await started('threaded', { label: 't' });
    expect(behaviour.pid()).toBe(process.pid);
    const where = (await receive({ type: 'where' })) as { pid: number; threadId: number };
    expect(where.pid).toBe(process.pid);
    expect(where.threadId).toBeGreaterThan(0);
    for (let i = 2; i <= 30; i++) expect(await receive({ type: 'echo', value: i })).toEqual({ label: 't', n: i, value: i });
  });

  // panics: a throwing handler rejects the receive.
  it('rejects the receive when the handler throws', async () => {
    const { receive } = await started('threaded');
    await expect(receive({ type: 'boom', message: 'thread boom' })).rejects.toThrow('thread boom');
  });

  // crash: an uncaught exception ends the thread; reported once as a crash (comedy alone would hang).
  it('reports the death of the thread as a crash', async () => {
    const { behaviour, receive, fails } = await started('threaded');
    await receive({ type: 'crash' }).catch(() => undefined);
    await waitFor(() => fails.length > 0, 5_000, 'ctx.fail');
    expect(fails).toHaveLength(1);
    expect(fails[0]).toMatchObject({ reason: 'crash', error: { code: 'ETHHOOK_ERR_ACTOR_CRASH' } });
    expect(String((fails[0]!.error as Error).message)).toContain('uncaught in child');
    expect(behaviour.pid()).toBeNull();
  });

  // stop: the thread's postStop runs, then the thread is terminated (comedy leaves it running).
  it('postStop runs the behaviour postStop and ends the thread', async () => {
    const marker = join(scratch, 'threaded-stopped');
    const { behaviour, ctx } = await started('threaded', { label: 's', postStopMarker: marker });
    await behaviour.postStop!(ctx);
    expect(existsSync(marker)).toBe(true);
    expect(behaviour.pid()).toBeNull();
    expect(process.getActiveResourcesInfo()).not.toContain('MessagePort');
  });
});
