// The /metrics of a real node process (bin/ethhook.mjs start, with a chain whose node is never reached
// and a governance stream, so every metric family is exposed):
// - it passes `promtool check metrics`, Prometheus' own lint of the text format and metric names;
// - right after the start, every counter and histogram whose label values are known then has its series
//   at 0 (per chain, per provider, per error kind, failover reason, delivery status, frame outcome, job
//   type, pipeline stage, transport, and per actor and reason), so increase() and rate() see the first
//   event after a start, and a runbook's grep prints the series.
// promtool comes with Debian's `prometheus` package; without it this file fails and says so.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RPC_ERROR_KINDS, FAILOVER_REASONS } from '../../src/actors/chain-listener/metrics.ts';
import { DELIVERY_STATUSES } from '../../src/actors/deliverer/metrics.ts';
import { FRAME_OUTCOMES } from '../../src/actors/governance/metrics.ts';
import { startGovernanceServer, type GovernanceServer } from '../../src/governance-server/index.ts';
import { PIPELINE_STAGES } from '../../src/pipeline-stages.ts';
import { DEAD_LETTER_REASONS, RESTART_REASONS } from '../../src/runtime/types.ts';
import { JOB_TYPES } from '../../src/store/outbox/job.ts';
import { TRANSPORTS } from '../../src/streams/metrics.ts';
import { makeKey, tempDir } from '../support/governance.ts';
import { createNodeDir, killAllNodes, readMetric, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';

/** Runs promtool with `input` on stdin; a missing promtool is an error that says how to install it. */
function promtool(args: string[], input: string): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { input, encoding: 'utf8' });
  if (run.error && 'code' in run.error && run.error.code === 'ENOENT') {
    throw new Error(
      "promtool is not installed: install Debian's prometheus package (apt-get install --no-install-recommends prometheus), which ships it",
    );
  }
  if (run.error) throw run.error;
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

const CHAIN = 'nowhere';

let keys: Awaited<ReturnType<typeof tempDir>>;
let server: GovernanceServer;
let dir: NodeDir;
let node: NodeProcess;
let exposition: string;

beforeAll(async () => {
  keys = await tempDir('ethhook-metrics-');
  const key = await makeKey(keys.dir, 'gov');
  server = await startGovernanceServer({ keyFile: key.file });
  dir = await createNodeDir();
  node = await startNodeProcess({
    dir,
    config: {
      // Port 9 (discard) on loopback: nothing listens, the chain is never reached.
      chains: [{ chainId: 1, name: CHAIN, wsUrl: 'ws://127.0.0.1:9', reconnect: { minMs: 60_000, maxMs: 60_000 } }],
      governance: { url: server.url, publicKeys: [key.publicPem] },
    },
  });
  exposition = String((await node.api<string>('GET', '/metrics')).body);
});

afterAll(async () => {
  await killAllNodes();
  await server?.close();
  await dir?.remove();
  await keys?.remove();
});

describe("the node's /metrics", () => {
  it('passes promtool check metrics', () => {
    expect(exposition).toMatch(/^governance_frames_total\{/m); // every family is there, governance's too
    const { status, output } = promtool(['check', 'metrics'], exposition);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('has every known counter and histogram series at 0 right after the start', () => {
    const value = (name: string, labels: Record<string, string> = {}) =>
      [`${name}${JSON.stringify(labels)}`, readMetric(exposition, name, labels)] as const;
    const chain = { chain: CHAIN };
    const provider = { chain: CHAIN, provider: 'primary' };
    const actor = { actor: '/pipeline/matcher' };
    const zero = [
      value('chain_reorgs_total', chain),
      value('chain_reorg_depth_count', chain),
      value('chain_reorg_depth_bucket', { ...chain, le: '+Inf' }),
      value('events_received_total', chain),
      // connection errors count from the first attempt: the chain's node is not there
      ...RPC_ERROR_KINDS.filter((kind) => kind !== 'connection').map((kind) => value('chain_rpc_errors_total', { ...chain, kind })),
      ...RPC_ERROR_KINDS.filter((kind) => kind !== 'connection').map((kind) => value('chain_provider_errors_total', { ...provider, kind })),
      ...FAILOVER_REASONS.map((reason) => value('chain_provider_failovers_total', { ...provider, reason })),
      value('chain_provider_latency_seconds_count', provider),
      value('chain_provider_disagreements_total', provider),
      value('chain_provider_throttled_total', provider),
      ...JOB_TYPES.map((type) => value('matcher_jobs_enqueued_total', { type })),
      ...DELIVERY_STATUSES.map((status) => value('webhook_deliveries_total', { status })),
      value('circuit_breaker_opens_total'),
      ...FRAME_OUTCOMES.map((outcome) => value('governance_frames_total', { outcome })),
      value('signature_mismatches_total'),
      ...PIPELINE_STAGES.map((stage) => value('pipeline_stage_seconds_count', { stage })),
      ...TRANSPORTS.map((transport) => value('stream_messages_sent_total', { transport })),
      ...RESTART_REASONS.map((reason) => value('actor_restarts_total', { ...actor, reason })),
      ...DEAD_LETTER_REASONS.map((reason) => value('actor_dead_letters_total', { ...actor, reason })),
      value('actor_panics_total', actor),
    ];
    expect(zero.filter(([, v]) => v !== 0)).toEqual([]);
    expect(readMetric(exposition, 'chain_rpc_errors_total', { ...chain, kind: 'connection' })).toBeGreaterThanOrEqual(0);
    expect(readMetric(exposition, 'chain_provider_errors_total', { ...provider, kind: 'connection' })).toBeGreaterThanOrEqual(0);
  });
});
