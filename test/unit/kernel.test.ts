// The kernel's behaviour at its edges: asks, overflow policies, the system lane, restart types,
// escalation, manual operations, health checks, and the metrics an SRE reads.
import { describe, expect, it } from 'vitest';
import { isEthhookError } from '../../src/runtime/errors.ts';
import type { ActorContext, SupervisionEvent, WorkerSpec } from '../../src/runtime/types.ts';
import { startSystem } from '../../src/supervision/index.ts';
import { memoryLogger, root, start, waitFor } from '../support/kernel.ts';

const echo = (name: string, extra: Partial<WorkerSpec> = {}): WorkerSpec => ({
  kind: 'worker',
  name,
  behaviour: () => ({ receive: (m: unknown, ctx: ActorContext) => (m === 'inc' ? ctx.incarnation : m) }),
  ...extra,
});

describe('ask', () => {
  // ask resolves with what receive returned, and rejects with a coded timeout error.
  it('resolves with the reply and times out with ETHHOOK_ERR_ASK_TIMEOUT', async () => {
    const { system } = await start([
      echo('e'),
      { kind: 'worker', name: 'slow', behaviour: () => ({ receive: () => new Promise(() => {}) }), shutdownTimeoutMs: 50 },
    ]);
    expect(await system.lookup('e')!.ask('hi')).toBe('hi');
    const err = await system
      .lookup('slow')!
      .ask('x', { timeoutMs: 30 })
      .catch((e: unknown) => e);
    expect(isEthhookError(err, 'ETHHOOK_ERR_ASK_TIMEOUT')).toBe(true);
    await system.shutdown('test');
  });
});

describe('overflow policies', () => {
  const blocked = (overflow: 'backpressure' | 'drop-oldest' | 'drop-newest') => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: number[] = [];
    const spec: WorkerSpec = {
      kind: 'worker',
      name: 'b',
      mailbox: { capacity: 2, overflow },
      behaviour: () => ({
        async receive(m: number) {
          if (m === 0) await gate;
          seen.push(m);
        },
      }),
    };
    return { spec, seen, release: () => release() };
  };

  it('backpressure: tell reports full and counts it, send waits for room', async () => {
    const t = blocked('backpressure');
    const { system } = await start([t.spec]);
    const ref = system.lookup<number>('b')!;
    expect(ref.tell(0)).toBe(true);
    await waitFor(() => system.findOrThrow('b').snapshot().mailbox!.size === 0);
    expect(ref.tell(1) && ref.tell(2)).toBe(true);
    expect(ref.tell(3)).toBe(false);
    let sent = false;
    const sending = ref.send(4).then(() => (sent = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(sent).toBe(false);
    t.release();
    await sending;
    await waitFor(() => t.seen.length === 4);
    expect(t.seen).toEqual([0, 1, 2, 4]);
    expect(system.findOrThrow('b').stats.deadLetters.rejected).toBe(1);
    await system.shutdown('test');
  });

  it('drop-oldest evicts the head, drop-newest refuses the newcomer; both are counted', async () => {
    for (const [policy, expected] of [
      ['drop-oldest', [0, 3, 4]],
      ['drop-newest', [0, 1, 2]],
    ] as const) {
      const t = blocked(policy);
      const { system } = await start([t.spec]);
      const ref = system.lookup<number>('b')!;
      ref.tell(0);
      await waitFor(() => system.findOrThrow('b').snapshot().mailbox!.size === 0);
      for (const m of [1, 2, 3, 4]) ref.tell(m);
      t.release();
      await waitFor(() => t.seen.length === 3);
      expect(t.seen).toEqual(expected);
      expect(system.findOrThrow('b').stats.deadLetters.overflow).toBe(2);
      await system.shutdown('test');
    }
  });
});

describe('system lane', () => {
  it('a stop is served before queued user messages, which survive for the next start', async () => {
    const seen: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { system } = await start([
      {
        kind: 'worker',
        name: 'w',
        behaviour: () => ({
          async receive(m: number) {
            if (m === 0) await gate;
            seen.push(m);
          },
        }),
      },
    ]);
    const ref = system.lookup<number>('w')!;
    for (const m of [0, 1, 2]) ref.tell(m);
    await waitFor(() => system.findOrThrow('w').snapshot().mailbox!.size === 2);
    const stopping = system.stopActor('w');
    release();
    await stopping;
    expect(seen).toEqual([0]);
    expect(system.findOrThrow('w').snapshot().mailbox!.size).toBe(2);
    expect(system.readiness()).toEqual({ ready: true, reasons: [], manuallyStopped: ['/w'] });
    await system.startActor('w');
    await waitFor(() => seen.length === 3);
    expect(seen).toEqual([0, 1, 2]);
    await system.shutdown('test');
  });
});

describe('readiness', () => {
  // Ready means the node can do its work: a manual stop is an operator's decision, reported apart;
  // an actor down for any other reason is a reason.
  it('lists a manually stopped supervisor once, not its children, and stays ready until it is started again', async () => {
    const { system } = await start([
      { kind: 'supervisor', name: 'group', strategy: 'one-for-one', children: [echo('a'), echo('b')] },
      echo('c'),
    ]);
    await system.stopActor('group');
    expect(system.findOrThrow('a').state).toBe('stopped');
    expect(system.readiness()).toEqual({ ready: true, reasons: [], manuallyStopped: ['/group'] });
    const metrics = await system.registry.metrics();
    expect(metrics).toContain('actor_manually_stopped{actor="/group/a"} 1');
    expect(metrics).toContain('actor_manually_stopped{actor="/c"} 0');
    expect(metrics).toContain('actor_up{actor="/group/a"} 0');
    await system.startActor('group');
    expect(system.readiness()).toEqual({ ready: true, reasons: [], manuallyStopped: [] });
    expect(await system.registry.metrics()).toContain('actor_manually_stopped{actor="/group/a"} 0');
    await system.shutdown('test');
  });

  it('is not ready while a permanent actor is down after a failure, nor while the node shuts down', async () => {
    const { system } = await start(
      [
        {
          kind: 'worker',
          name: 'p',
          maxConsecutivePanics: 1,
          behaviour: () => ({
            receive: () => {
              throw new Error('boom');
            },
          }),
        },
      ],
      { backoff: { minMs: 60_000, maxMs: 60_000, jitter: 0 } },
    );
    expect(system.findOrThrow('p').snapshot().lastPanic).toBeUndefined();
    const before = Date.now();
    system.lookup('p')!.tell(1);
    await waitFor(() => system.findOrThrow('p').stats.restarts.panic === 1);
    expect(system.readiness()).toEqual({ ready: false, reasons: ['/p is stopped'], manuallyStopped: [] });
    // The snapshot names the latest panic: its message and when.
    const { lastPanic } = system.findOrThrow('p').snapshot();
    expect(lastPanic?.message).toBe('boom');
    expect(lastPanic?.at).toBeGreaterThanOrEqual(before);
    const down = system.shutdown('test');
    expect(system.readiness().reasons).toContain('the node is shutting down');
    await down;
  });
});

describe('restart types', () => {
  it('temporary children are not restarted and later messages are dead letters; transient ones end normally', async () => {
    const { system } = await start([
      {
        kind: 'worker',
        name: 'tmp',
        restart: 'temporary',
        behaviour: () => ({
          receive: () => {
            throw new Error('x');
          },
        }),
      },
      {
        kind: 'worker',
        name: 'tr',
        restart: 'transient',
        behaviour: () => ({ receive: (_m: unknown, ctx: ActorContext) => ctx.stopSelf() }),
      },
    ]);
    system.lookup('tmp')!.tell('a');
    system.lookup('tr')!.tell('a');
    await waitFor(() => system.findOrThrow('tmp').state === 'stopped' && system.findOrThrow('tr').state === 'stopped');
    expect(system.lookup('tmp')!.tell('b')).toBe(false);
    // The message that panicked it and the one sent after it.
    expect(system.findOrThrow('tmp').stats.deadLetters.stopped).toBe(2);
    expect(system.findOrThrow('tmp').stats.totalRestarts + system.findOrThrow('tr').stats.totalRestarts).toBe(0);
    expect(system.readiness().ready).toBe(true);
    await system.shutdown('test');
  });
});

describe('escalation', () => {
  it('a nested supervisor that exceeds its intensity escalates; the parent restarts it (reason escalation)', async () => {
    const events: SupervisionEvent[] = [];
    const { system } = await start(
      [
        {
          kind: 'supervisor',
          name: 'inner',
          strategy: 'one-for-one',
          intensity: { maxRestarts: 1, withinMs: 60_000 },
          backoff: { minMs: 0, maxMs: 1, jitter: 0 },
          children: [
            {
              kind: 'worker',
              name: 'w',
              maxConsecutivePanics: 1,
              behaviour: () => ({
                receive: () => {
                  throw new Error('boom');
                },
              }),
            },
          ],
        },
      ],
      { intensity: { maxRestarts: 10, withinMs: 60_000 } },
    );
    system.onEvent((e) => events.push(e));
    const ref = system.lookup('w')!;
    ref.tell(1);
    await waitFor(() => system.findOrThrow('w').stats.restarts.panic === 1 && system.findOrThrow('w').state === 'running');
    ref.tell(2);
    await waitFor(() => system.findOrThrow('inner').stats.restarts.escalation === 1 && system.readiness().ready);
    expect(events.some((e) => e.type === 'escalated' && e.path === '/inner')).toBe(true);
    expect(system.findOrThrow('w').state).toBe('running');
    await system.shutdown('test');
  });

  it('at the root, exceeding the intensity stops the node with a non-zero exit and says why', async () => {
    const log = memoryLogger();
    const system = await startSystem(
      root(
        [
          {
            kind: 'worker',
            name: 'w',
            maxConsecutivePanics: 1,
            behaviour: () => ({
              receive: () => {
                throw new Error('boom');
              },
            }),
          },
        ],
        { intensity: { maxRestarts: 2, withinMs: 60_000 } },
      ),
      { logger: log.logger },
    );
    const ref = system.lookup('w')!;
    for (let i = 0; i < 3; i++) {
      await waitFor(() => system.findOrThrow('w').state === 'running' || system.findOrThrow('/').state !== 'running');
      ref.tell(i);
      await waitFor(() => system.findOrThrow('w').stats.panicked === i + 1);
    }
    const exit = await system.exited;
    expect(exit.code).toBe(1);
    expect(log.lines.some((l) => l.code === 'ETHHOOK_ERR_RESTART_INTENSITY' && l.level === 60)).toBe(true);
  });
});

describe('manual operations', () => {
  it('restart replaces the incarnation and counts reason manual; names and paths both resolve', async () => {
    const { system } = await start([{ kind: 'supervisor', name: 'p', strategy: 'one-for-one', children: [echo('e')] }]);
    const ref = system.lookup('/p/e')!;
    expect(await ref.ask('inc')).toBe(1);
    await system.restartActor('e');
    expect(await ref.ask('inc')).toBe(2);
    await system.restartActor('/p');
    expect(await ref.ask('inc')).toBe(3);
    expect(system.findOrThrow('/p/e').stats.restarts.manual).toBe(1);
    expect(system.findOrThrow('/p').stats.restarts.manual).toBe(1);
    const text = await system.registry.metrics();
    expect(text).toContain('actor_restarts_total{actor="/p/e",reason="manual"} 1');
    await expect(system.restartActor('nope')).rejects.toMatchObject({ code: 'ETHHOOK_ERR_ACTOR_NOT_FOUND' });
    await system.shutdown('test');
  });

  // find and lookup never throw: a path or name that picks out no single actor is undefined;
  // findOrThrow (what the manual operations use) says whether it is unknown or shared.
  it('find is undefined for an unknown path or name and for a shared name; findOrThrow names the reason', async () => {
    const { system } = await start([
      { kind: 'supervisor', name: 'p', strategy: 'one-for-one', children: [echo('e'), echo('twin')] },
      { kind: 'supervisor', name: 'q', strategy: 'one-for-one', children: [echo('twin')] },
    ]);
    expect(system.find('e')?.path).toBe('/p/e');
    expect(system.find('/q/twin')?.path).toBe('/q/twin');
    expect(system.find('/p')?.kind).toBe('supervisor');
    for (const missing of ['/nope', 'nope', '/p/nope', 'twin']) expect(system.find(missing), missing).toBeUndefined();
    expect(system.lookup('twin')).toBeUndefined();
    const thrown = (pathOrName: string): unknown => {
      try {
        return system.findOrThrow(pathOrName);
      } catch (err) {
        return err;
      }
    };
    expect(thrown('/nope')).toMatchObject({ code: 'ETHHOOK_ERR_ACTOR_NOT_FOUND', message: 'no actor at /nope' });
    expect(thrown('nope')).toMatchObject({ code: 'ETHHOOK_ERR_ACTOR_NOT_FOUND', message: 'no actor named nope' });
    expect(thrown('twin')).toMatchObject({
      code: 'ETHHOOK_ERR_ACTOR_AMBIGUOUS',
      message: 'several actors are named twin: /p/twin, /q/twin',
    });
    expect(thrown('e')).toBe(system.find('/p/e'));
    await expect(system.stopActor('twin')).rejects.toMatchObject({ code: 'ETHHOOK_ERR_ACTOR_AMBIGUOUS' });
    await system.shutdown('test');
  });
});

describe('health checks', () => {
  it('restarts an actor whose health() keeps failing, with reason health', async () => {
    let healthy = false;
    const { system } = await start([
      {
        kind: 'worker',
        name: 'h',
        healthCheck: { intervalMs: 10, failures: 2 },
        behaviour: () => ({ receive: () => undefined, health: () => ({ ok: healthy, detail: 'upstream down' }) }),
      },
    ]);
    await waitFor(() => system.findOrThrow('h').stats.restarts.health >= 1);
    healthy = true;
    await waitFor(() => system.findOrThrow('h').state === 'running');
    await system.shutdown('test');
  });
});

describe('metrics', () => {
  it('exposes the kernel metrics with the exact names, and none of the duration histogram when metrics are off', async () => {
    const { system } = await start([echo('e', { mailbox: { capacity: 8 } })]);
    await system.lookup('e')!.ask(1);
    const text = await system.registry.metrics();
    for (const name of [
      'actor_mailbox_size',
      'actor_mailbox_capacity',
      'actor_messages_total',
      'actor_message_duration_seconds',
      'actor_panics_total',
      'actor_restarts_total',
      'actor_dead_letters_total',
      'actor_up',
      'actor_manually_stopped',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toContain('actor_mailbox_capacity{actor="/e"} 8');
    expect(text).toContain('actor_messages_total{actor="/e",outcome="ok"} 1');
    expect(text).toContain('actor_message_duration_seconds_count{actor="/e"} 1');
    await system.shutdown('test');

    const off = await start([echo('e')], {}, { metrics: false });
    await off.system.lookup('e')!.ask(1);
    expect(await off.system.registry.metrics()).toContain('actor_message_duration_seconds_count{actor="/e"} 0');
    await off.system.shutdown('test');
  });

  it('every log line of an actor carries its path', async () => {
    const { system, lines } = await start([
      { kind: 'worker', name: 'l', behaviour: () => ({ receive: (_m: unknown, ctx: ActorContext) => ctx.log.info('hello') }) },
    ]);
    await system.lookup('l')!.ask(1);
    await system.shutdown('test');
    expect(lines.find((l) => l.msg === 'hello')?.actor).toBe('/l');
  });
});
