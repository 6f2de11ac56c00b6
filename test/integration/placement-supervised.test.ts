/**
 * A forked actor under a real supervisor: `kill -9` of its child process is a crash, the supervisor
 * restarts the actor in a new process, and its mailbox (kept in the parent) carries on.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/runtime/log.ts';
import type { ActorSystem } from '../../src/runtime/system.ts';
import type { PlacementSpec, SupervisionEvent, WorkerSpec } from '../../src/runtime/types.ts';
import type { ProbeMessage } from '../fixtures/placement-behaviours.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { findActor, isAlive, root, waitFor } from '../support/kernel.ts';

const placement: PlacementSpec = {
  mode: 'forked',
  module: fileURLToPath(new URL('../fixtures/placement-behaviours.ts', import.meta.url)),
  exportName: 'probe',
  args: { label: 'supervised' },
};
let system: ActorSystem | null = null;

afterEach(async () => {
  await system?.shutdown('test over', 10_000);
  system = null;
});

/** A placed worker needs no behaviour factory: the kernel runs the placement proxy for it. */
function placedWorker(name: string): WorkerSpec<ProbeMessage> {
  return { kind: 'worker', name, placement };
}

/** The children log at the level of the system's logger, to their own stdout: keep them quiet. */
async function startQuiet(spec: WorkerSpec<ProbeMessage>): Promise<ActorSystem> {
  return startSystem(root([spec]), { logger: createLogger({ level: 'silent' }) });
}

describe('forked actor under a supervisor', () => {
  // crash → restart: a new process handles the next messages, the restart is counted with reason crash.
  it('restarts the actor in a new process after kill -9 of its child', async () => {
    system = await startQuiet(placedWorker('placed'));
    const events: SupervisionEvent[] = [];
    system.onEvent((e) => events.push(e));
    const ref = system.lookup<ProbeMessage>('placed')!;
    const path = ref.path;
    const snap = () => findActor(system!.snapshot(), path)!;

    expect(await ref.ask({ type: 'echo', value: 'before' })).toMatchObject({ n: 1, value: 'before' });
    const first = snap();
    expect(first).toMatchObject({ placement: 'forked', state: 'running', incarnation: 1 });
    const oldPid = first.pid!;
    expect(oldPid).not.toBe(process.pid);

    process.kill(oldPid, 'SIGKILL');
    // Sent while the child is dead or restarting: the mailbox lives in the parent and keeps them.
    const queued = [
      ref.ask({ type: 'echo', value: 'a' }, { timeoutMs: 30_000 }),
      ref.ask({ type: 'echo', value: 'b' }, { timeoutMs: 30_000 }),
    ];

    await waitFor(() => snap().state === 'running' && snap().incarnation === 2, 30_000, 'the restart');
    const newPid = snap().pid!;
    expect(newPid).not.toBe(oldPid);
    expect(isAlive(oldPid)).toBe(false);
    expect(isAlive(newPid)).toBe(true);

    // The new incarnation starts counting again; the queued messages come first, in order.
    expect(await Promise.all(queued)).toEqual([
      { label: 'supervised', n: 1, value: 'a' },
      { label: 'supervised', n: 2, value: 'b' },
    ]);
    expect(await ref.ask({ type: 'where' })).toMatchObject({ pid: newPid, incarnation: 2 });

    expect(events.filter((e) => e.type === 'crash')).toHaveLength(1);
    expect(events).toContainEqual(expect.objectContaining({ type: 'restarting', path, reason: 'crash' }));
    const restarts = await system.registry.getSingleMetricAsString('actor_restarts_total');
    expect(restarts).toMatch(new RegExp(`actor_restarts_total\\{actor="${path}",reason="crash"\\} 1`));

    // Shutdown ends the child process too.
    await system.shutdown('test over', 10_000);
    system = null;
    expect(isAlive(newPid)).toBe(false);
  });

  // panic in the child: supervised like a local actor — each panic restarts it in a new process, and the
  // message that panicked it three times in a row ends in dead letters.
  it('treats a handler error in the child as a panic, up to the poison limit', async () => {
    system = await startQuiet(placedWorker('panicky'));
    const ref = system.lookup<ProbeMessage>('panicky')!;
    const path = ref.path;
    const oldPid = findActor(system.snapshot(), path)!.pid!;
    await expect(ref.ask({ type: 'boom', message: 'child says no' }, { timeoutMs: 30_000 })).rejects.toMatchObject({
      code: 'ETHHOOK_ERR_POISON_MESSAGE',
    });
    await waitFor(() => findActor(system!.snapshot(), path)!.state === 'running', 30_000, 'running again');
    const snap = findActor(system.snapshot(), path)!;
    expect(snap).toMatchObject({ panics: 3, incarnation: 4 });
    expect(await ref.ask({ type: 'where' }, { timeoutMs: 10_000 })).toMatchObject({ pid: snap.pid, incarnation: 4 });
    expect(snap.pid).not.toBe(oldPid);
    expect(isAlive(oldPid)).toBe(false);
  });

  // The child's first words reach the parent only after the start was confirmed, so talking from
  // preStart neither breaks comedy's create handshake nor gets lost.
  it('lets a placed behaviour talk to its parent from preStart', async () => {
    const greetings: unknown[] = [];
    system = await startSystem(
      root([
        { kind: 'worker', name: 'collector', behaviour: () => ({ receive: (m: unknown) => void greetings.push(m) }) },
        { kind: 'worker', name: 'greeter', placement: { ...placement, exportName: 'greeter' } },
      ]),
      { logger: createLogger({ level: 'silent' }) },
    );
    await waitFor(() => greetings.length === 1, 20_000, 'the greeting');
    expect(greetings).toEqual([{ type: 'hello', from: '/greeter' }]);
    expect(await system.lookup('/greeter')!.ask('ping')).toBe('ping');
  });
});
