/**
 * The short chaos run the chaos e2e tests share (chaos/run.ts): `everything` for 12 s, seed 7, on the
 * store given (with `cluster`, that many instances on PostgreSQL), and what such a run must show: every
 * check of chaos/invariant.ts at zero, every kind of fault of its lanes really injected, nothing lost,
 * no node exited unless a fault killed it, and every one exited 0 on the final SIGTERM.
 */
import { expect } from 'vitest';
import { FAILURES } from '../../chaos/invariant.ts';
import { jsonLine, runChaos, type ChaosResult } from '../../chaos/run.ts';
import type { ChaosStore } from '../../chaos/scenarios.ts';

export async function shortChaosRun(store: ChaosStore, cluster?: number): Promise<ChaosResult> {
  const lines: string[] = [];
  const result = await runChaos({
    scenario: 'everything',
    seed: 7,
    seconds: 12,
    // The runner's default: nothing is owed within about 10 s on a quiet machine; with two suites side by
    // side on two cores the last deliveries came more than 30 s after the heal.
    convergeSeconds: 60,
    store,
    ...(cluster === undefined ? {} : { cluster }),
    print: (l) => lines.push(l),
  });
  console.info(`chaos e2e (${store}${cluster === undefined ? '' : `, cluster of ${cluster}`}): ${jsonLine(result)}`);
  const summary = lines.join('\n');
  expect(result.failed, summary).toEqual([]);
  for (const kind of result.kinds) expect(result.faults[kind], `${kind} injections\n${summary}`).toBeGreaterThan(0);
  expect(result.ok, summary).toBe(true);
  expect(result.lost).toBe(0);
  expect(result.expected).toBeGreaterThan(100);
  expect(result.delivered).toBe(result.expected);
  expect(result.convergeMs, summary).not.toBeNull();
  for (const check of FAILURES) expect(result.verdict[check], `${check}\n${summary}`).toBe(0);
  expect(result.deadLetters, summary).toBe(0);
  expect(result.unexpectedExits, summary).toEqual([]);
  expect(result.finalExit, summary).toEqual({ code: 0, signal: null });
  expect(lines.at(-1)).toBe(jsonLine(result));
  return result;
}
