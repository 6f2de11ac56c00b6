// /ready on a real node process: it means "this instance can do its work". An actor an operator
// stopped through the admin API keeps the node ready (a StatefulSet's rollout and its
// PodDisruptionBudget count ready pods, and runbooks stop actors on every instance at once); the body
// and actor_manually_stopped say which one, until it is started again.
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir } from '../support/node-process.ts';

/** The answer of an actor operation: the actor's snapshot after it. */
interface ActorAnswer {
  actor: { path: string; state: string };
}

const dirs: NodeDir[] = [];
afterAll(async () => {
  await killAllNodes();
  await Promise.all(dirs.map((d) => d.remove()));
});

describe('/ready and an actor stopped by an operator', () => {
  it('stays 200 and lists the actor in manuallyStopped and actor_manually_stopped until it is started again', async () => {
    const dir = await createNodeDir();
    dirs.push(dir);
    const node = await startNodeProcess({ dir, config: {} });
    expect(await node.api('GET', '/ready')).toEqual({ status: 200, body: { ready: true, reasons: [], manuallyStopped: [] } });

    const stopped = await node.api<ActorAnswer>('POST', '/admin/actors/stop', { actor: '/pipeline/matcher' });
    expect(stopped.status).toBe(200);
    expect(stopped.body.actor).toMatchObject({ path: '/pipeline/matcher', state: 'stopped' });
    expect(await node.api('GET', '/ready')).toEqual({
      status: 200,
      body: { ready: true, reasons: [], manuallyStopped: ['/pipeline/matcher'] },
    });
    expect(await node.metric('actor_up', { actor: '/pipeline/matcher' })).toBe(0);
    expect(await node.metric('actor_manually_stopped', { actor: '/pipeline/matcher' })).toBe(1);
    expect(await node.metric('actor_manually_stopped', { actor: '/pipeline/deliverer' })).toBe(0);

    const started = await node.api<ActorAnswer>('POST', '/admin/actors/start', { actor: '/pipeline/matcher' });
    expect(started.body.actor).toMatchObject({ path: '/pipeline/matcher', state: 'running' });
    expect(await node.api('GET', '/ready')).toEqual({ status: 200, body: { ready: true, reasons: [], manuallyStopped: [] } });
    expect(await node.metric('actor_manually_stopped', { actor: '/pipeline/matcher' })).toBe(0);
    node.kill('SIGTERM');
    expect((await node.waitForExit()).code).toBe(0);
  }, 60_000);
});
