/**
 * The Backfill actor's metrics, created once per prom-client registry. Labels: the configured chain
 * name (bounded). Every chain's series exist from the start, at 0.
 *
 * - `backfills_running{chain}`: backfills this instance runs now.
 * - `backfill_blocks_total{chain}`: blocks read and enqueued by backfills.
 * - `backfill_jobs_total{chain}`: webhook jobs they enqueued (pairs enqueued before, live or by an
 *   earlier backfill, inside the reorg window, are not counted again).
 * - `backfill_height{chain}`: the block the most recent page of a backfill reached.
 * - `backfill_lag_blocks{chain}`: blocks still to read by the running backfills, summed (0 when none).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface BackfillMetrics {
  running: Gauge<'chain'>;
  blocks: Counter<'chain'>;
  jobs: Counter<'chain'>;
  height: Gauge<'chain'>;
  lag: Gauge<'chain'>;
}

const byRegistry = new WeakMap<Registry, BackfillMetrics>();

export function getBackfillMetrics(registry: Registry, chains: readonly string[]): BackfillMetrics {
  let metrics = byRegistry.get(registry);
  if (!metrics) {
    const registers = [registry];
    const labelNames = ['chain'] as const;
    metrics = {
      running: new Gauge({ name: 'backfills_running', help: 'Backfills this instance runs now', labelNames, registers }),
      blocks: new Counter({ name: 'backfill_blocks_total', help: 'Blocks read and enqueued by backfills', labelNames, registers }),
      jobs: new Counter({ name: 'backfill_jobs_total', help: 'Webhook jobs enqueued by backfills', labelNames, registers }),
      height: new Gauge({ name: 'backfill_height', help: 'The block the latest page of a backfill reached', labelNames, registers }),
      lag: new Gauge({ name: 'backfill_lag_blocks', help: 'Blocks the running backfills still have to read', labelNames, registers }),
    };
    byRegistry.set(registry, metrics);
    for (const chain of chains) {
      metrics.running.set({ chain }, 0);
      metrics.blocks.inc({ chain }, 0);
      metrics.jobs.inc({ chain }, 0);
      metrics.height.set({ chain }, 0);
      metrics.lag.set({ chain }, 0);
    }
  }
  return metrics;
}
