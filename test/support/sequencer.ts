/**
 * The order vitest starts the test files in (vitest.config.ts `sequence.sequencer`): the files known to
 * be slow first, slowest first, then every other file in vitest's own order (the last run's durations
 * when its cache has them, else larger files first).
 *
 * Workers take the next file as they free up, so a long file started last sets the run's tail alone
 * while the others have finished; started first, the short files fill in around it. A fresh clone has no
 * cache of durations: without this list its files start by size, and a one-minute file could start last.
 *
 * `SLOW_FILES` lists the files that take about 15 s or more on a quiet two-core machine, slowest first;
 * a file missing from it only starts in vitest's order, so the list needs to be roughly right, not exact.
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

export const SLOW_FILES: readonly string[] = [
  'test/contract/postgres.contract.test.ts',
  'test/e2e/cluster-kills.e2e.test.ts',
  'test/unit/cli.test.ts',
  'test/e2e/crash.postgres.e2e.test.ts',
  'test/e2e/chaos.postgres.e2e.test.ts',
  'test/e2e/cluster-pg-restart.e2e.test.ts',
  'test/e2e/chaos.cluster.e2e.test.ts',
  'test/e2e/cluster-failover.e2e.test.ts',
  'test/integration/placement.test.ts',
  'test/e2e/cluster-fencing.e2e.test.ts',
  'test/e2e/cluster-resize.e2e.test.ts',
  'test/e2e/backfill.e2e.test.ts',
  'test/e2e/chaos.e2e.test.ts',
  'test/integration/deliverer-forked-cluster-limits.test.ts',
  'test/e2e/cluster-backfill.e2e.test.ts',
  'test/e2e/cluster-rate-limit.e2e.test.ts',
  'test/e2e/store-outage.postgres.e2e.test.ts',
  'test/e2e/crash.e2e.test.ts',
  'test/e2e/console-access.e2e.test.ts',
  'test/e2e/reorg.postgres.e2e.test.ts',
  'test/integration/master-key.test.ts',
  'test/integration/runbooks.test.ts',
  'test/e2e/delivery.postgres.e2e.test.ts',
  'test/integration/chain-reset-cursor.test.ts',
  'test/e2e/console-firefox.e2e.test.ts',
  'test/e2e/deliverer-forked.e2e.test.ts',
  'test/integration/deliverer-forked-placement.test.ts',
  'test/integration/store-copy.test.ts',
];

export class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const inVitestOrder = await super.sort(files);
    const rank = (spec: TestSpecification): number => {
      const index = SLOW_FILES.indexOf(relative(spec.project.config.root, spec.moduleId).replaceAll('\\', '/'));
      return index === -1 ? SLOW_FILES.length : index;
    };
    // Array.prototype.sort is stable: the unlisted files keep vitest's order among themselves.
    return inVitestOrder.sort((a, b) => rank(a) - rank(b));
  }
}
