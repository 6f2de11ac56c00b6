/**
 * The GovernanceStream actor: `createGovernanceStream(options)` returns the kernel behaviour that
 * follows the governance server (stream.ts), verifies and applies its messages strictly in sequence
 * (sequencer.ts) through `options.apply`, and records its height and trusted keys in the `governance`
 * sublevel (state.ts). It runs at `/governance-stream`. Protocol: docs/governance.md.
 *
 * - preStart loads the recorded state and starts connecting in the background: the actor is up even
 *   when the server is not, and reconnects forever.
 * - The configured public keys are checked when the behaviour is created (a bad key is a configuration
 *   error, ETHHOOK_ERR_GOVERNANCE_KEY_INVALID naming its index); they seed the trusted set (state.ts).
 * - `onApplied({ seq, type, keyId })` runs after each applied message, once its height is recorded,
 *   key rotations included (e.g. to publish a governance notice on the live event streams).
 * - Messages: see messages.ts.
 * - health() is ok while running: a lost server is handled by reconnecting, not by a restart.
 */
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { EthhookError, isEthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Behaviour } from '../../runtime/types.ts';
import type { Kv } from '../../store/kv.ts';
import { fencedKv, type FenceSource } from '../../store/fenced-kv.ts';
import type { GovernanceApplier } from './applier.ts';
import { trustedKey, type TrustedKey } from '../../governance-protocol/keys.ts';
import { governanceRequestSchema, type GovernanceReply, type GovernanceRequest } from './messages.ts';
import { getGovernanceMetrics } from './metrics.ts';
import { GovernanceSequencer, type AppliedMessage } from './sequencer.ts';
import { GovernanceStateStore } from './state.ts';
import { GovernanceConnection, redactUrl } from './stream.ts';

export type { ApplyMeta, GovernanceApplier } from './applier.ts';
export { governanceErrorCodes } from './errors.ts';
export { governanceRequestSchema, type GovernanceReply, type GovernanceRequest, type GovernanceStatus } from './messages.ts';
export { FRAME_OUTCOMES, getGovernanceMetrics, type GovernanceMetrics } from './metrics.ts';
export type { AppliedMessage } from './sequencer.ts';

export const governanceStreamConfigSchema = z.object({
  url: z.url({ protocol: /^wss?$/, error: 'must be a ws:// or wss:// URL' }),
  publicKeys: z.array(z.string().min(1)).min(1, 'at least one public key is needed to verify messages'),
  reconnect: z
    .object({ minMs: z.number().int().min(1), maxMs: z.number().int().min(1) })
    .refine((r) => r.maxMs >= r.minMs, { message: 'maxMs must be >= minMs', path: ['maxMs'] }),
});
export type GovernanceStreamConfig = z.input<typeof governanceStreamConfigSchema>;

export interface GovernanceStreamOptions {
  config: GovernanceStreamConfig;
  kv: Kv;
  apply: GovernanceApplier;
  registry: Registry;
  /** Defaults to the actor's own logger. */
  logger?: Logger;
  /** Every applied message, key rotations included; must not block. */
  onApplied?: (applied: AppliedMessage) => void;
  /**
   * The `governance` lease of a cluster (src/cluster/coordinator.ts): the recorded height is written
   * fenced by it, and only its holder applies (sequencer.ts). Absent: this instance applies everything.
   */
  lease?: FenceSource;
}

/** Parses the configured keys; throws ETHHOOK_ERR_GOVERNANCE_KEY_INVALID naming the bad one. */
export function parseGovernanceKeys(publicKeys: string[]): TrustedKey[] {
  return publicKeys.map((text, index) => {
    try {
      return trustedKey(text);
    } catch (err) {
      if (!isEthhookError(err)) throw err;
      throw new EthhookError(err.code, `governance.publicKeys[${index}]: ${err.message}`, { field: `governance.publicKeys.${index}` });
    }
  });
}

export function createGovernanceStream(options: GovernanceStreamOptions): Behaviour<GovernanceRequest> {
  const checked = governanceStreamConfigSchema.safeParse(options.config);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    const field = `governance.${issue.path.map(String).join('.')}`;
    throw new EthhookError('ETHHOOK_ERR_CONFIG_INVALID', `invalid governance config: ${field}: ${issue.message}`, { field });
  }
  const config = checked.data;
  const configured = parseGovernanceKeys(config.publicKeys);
  const metrics = getGovernanceMetrics(options.registry);
  let connection: GovernanceConnection | null = null;

  const stop = async () => {
    const current = connection;
    connection = null;
    await current?.stop();
  };

  return {
    async preStart(ctx) {
      const log = (options.logger ?? ctx.log).child({ governance: redactUrl(config.url) });
      const store = new GovernanceStateStore(options.kv);
      const { state, reseeded } = await store.load(configured);
      const recorder = options.lease ? new GovernanceStateStore(fencedKv(options.kv, options.lease)) : store;
      if (reseeded)
        log.warn(
          { trustedKeys: state.keys.map((k) => k.keyId), height: state.height },
          'governance keys changed in the configuration: trusted set reset to them',
        );
      const sequencer = new GovernanceSequencer({
        store: { commit: (next) => recorder.commit(next), height: () => store.height() },
        ...(options.lease ? { lease: options.lease } : {}),
        state,
        apply: options.apply,
        metrics,
        log,
        onNeed: (from) => connection?.need(from),
        onApplied: options.onApplied,
      });
      connection = new GovernanceConnection({ url: config.url, reconnect: config.reconnect, sequencer, metrics, log });
      connection.start();
    },
    receive(msg, ctx): GovernanceReply {
      const request = governanceRequestSchema.safeParse(msg);
      if (!request.success || !connection) {
        // Answered, not thrown: a stray message must not restart the actor and drop its connection.
        const error = new EthhookError('ETHHOOK_ERR_GOVERNANCE_UNKNOWN_MESSAGE', 'governance stream: unknown message', {
          messageType: typeof msg === 'object' && msg !== null ? String((msg as { type?: unknown }).type) : typeof msg,
        });
        ctx.log.warn({ code: error.code, ...error.context }, error.message);
        return { ok: false, error: error.toJSON() };
      }
      if (request.data.type === 'governance.status') return connection.status();
      connection.reconnect();
      return { ok: true };
    },
    postStop: stop,
    preRestart: stop,
    health() {
      if (!connection) return { ok: false, detail: 'not started' };
      const s = connection.status();
      return { ok: true, detail: `${s.connected ? 'connected' : 'connecting'}, height ${s.height}` };
    },
  };
}
