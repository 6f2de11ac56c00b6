/** Helpers for kernel tests: a quiet logger, a tree builder, and a way to wait for a condition. */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/runtime/log.ts';
import type { SystemOptions } from '../../src/runtime/system.ts';
import type { ActorSnapshot, ChildSpec, SupervisorSpec } from '../../src/runtime/types.ts';
import { startSystem } from '../../src/supervision/index.ts';

/** A logger that keeps its JSON lines in memory, so tests can assert on them. */
export function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

export function root(children: ChildSpec[], extra: Partial<SupervisorSpec> = {}): SupervisorSpec {
  return { kind: 'supervisor', name: 'root', strategy: 'one-for-one', backoff: { minMs: 0, maxMs: 5, jitter: 0 }, children, ...extra };
}

export async function start(children: ChildSpec[], extra: Partial<SupervisorSpec> = {}, options: SystemOptions = {}) {
  const log = memoryLogger();
  const system = await startSystem(root(children, extra), { logger: log.logger, ...options });
  return { system, lines: log.lines };
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The node at `path` in a tree snapshot. */
export function findActor(snap: ActorSnapshot, path: string): ActorSnapshot | undefined {
  if (snap.path === path) return snap;
  for (const c of snap.children ?? []) {
    const hit = findActor(c, path);
    if (hit) return hit;
  }
  return undefined;
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
