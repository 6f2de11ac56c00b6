/**
 * The GovernanceSequencer turns received frames into applied changes, strictly in sequence. It knows
 * nothing of sockets: `handle(text)` takes one frame and resolves once it is dealt with (never rejects).
 *
 * For each frame, in this order:
 * 1. parse (JSON, envelope, payload of its type)      -> else `malformed`
 * 2. the keyId names a trusted key                    -> else `unknown-key`   (signature mismatch)
 * 3. the signature verifies under that key            -> else `bad-signature` (signature mismatch)
 * 4. seq <= height: already applied                   -> `replay`, ignored
 * 5. seq > height + 1: something is missing           -> `gap`, ignored
 * 6. seq = height + 1: applied (key rotations here, the rest through the applier), then the new
 *    height (and key set) recorded in one write       -> `applied`, or `apply-failed` if the applier
 *                                                        or the write rejected
 * In a cluster (`lease` given: the `governance` lease, src/cluster/coordinator.ts) the store is shared
 * and each message is applied into it once, by the instance holding the lease: step 6 first reads the
 * recorded height. Recorded at or past seq, another instance applied it: this one takes the new height
 * (and, for a key rotation, computes the same key set) without applying or recording anything ->
 * `applied`; its pipeline hears of the change from the instance that applied it (src/cluster/
 * notices.ts). Below seq, the lease holder applies it, the recorded height written fenced by the lease
 * (an instance that lost it records nothing); any other instance leaves it -> `pending`, and the
 * stream asks for it again after a backoff, by which time the holder has applied it.
 * After each applied message (height recorded), `onApplied({ seq, type, keyId })` is called: key
 * rotations included, which the applier never sees. A callback that throws is logged, not a failure:
 * the message is applied and recorded by then.
 * Rejections and gaps never apply anything; they call `onNeed(height + 1)` so the connection asks the
 * server for the expected message again (a frame that claims an already applied seq does not).
 * Every rejection is logged with its context (seq, keyId, reason), at most LOG_BURST lines per outcome
 * every LOG_PERIOD_MS, so a hostile server cannot flood the logs; the counters count every one.
 */
import type { KeyObject } from 'node:crypto';
import { describeError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { ApplyMeta, GovernanceApplier } from './applier.ts';
import { parsePublicKey, spkiBase64, verifyMessage, type TrustedKey } from '../../governance-protocol/keys.ts';
import type { FrameOutcome, GovernanceMetrics } from './metrics.ts';
import {
  parseGovernanceFrame,
  type GovernancePayload,
  type GovernanceType,
  type ParsedMessage,
} from '../../governance-protocol/protocol.ts';
import type { GovernanceState, GovernanceStateStore } from './state.ts';

const LOG_BURST = 20;

/** The catalog code each rejection is logged under, so operators can search for it. */
const CODE_BY_OUTCOME: Partial<Record<FrameOutcome, string>> = {
  malformed: 'ETHHOOK_ERR_GOVERNANCE_MESSAGE_INVALID',
  'unknown-key': 'ETHHOOK_ERR_GOVERNANCE_SIGNATURE',
  'bad-signature': 'ETHHOOK_ERR_GOVERNANCE_SIGNATURE',
  'apply-failed': 'ETHHOOK_ERR_GOVERNANCE_APPLY',
};
const LOG_PERIOD_MS = 10_000;

/** What `onApplied` is told about each applied message. */
export interface AppliedMessage {
  seq: number;
  type: GovernanceType;
  /** The fingerprint of the key that signed it. */
  keyId: string;
}

export interface SequencerDeps {
  /** `height` (the recorded height) is read with a `lease` only. */
  store: Pick<GovernanceStateStore, 'commit' | 'height'>;
  /** The governance lease of a cluster; absent: this instance applies everything. */
  lease?: { current(): unknown };
  state: GovernanceState;
  apply: GovernanceApplier;
  metrics: GovernanceMetrics;
  log: Logger;
  /** The stream needs the messages from `from` on again. */
  onNeed(from: number): void;
  onApplied?: (applied: AppliedMessage) => void;
}

export class GovernanceSequencer {
  private state: GovernanceState;
  private trusted = new Map<string, KeyObject>();
  private readonly logWindow = new Map<FrameOutcome, { start: number; count: number }>();
  lastError: { message: string; at: number } | null = null;

  constructor(private readonly deps: SequencerDeps) {
    this.state = deps.state;
    this.trust(deps.state.keys);
    deps.metrics.height.set(this.state.height);
  }

  get height(): number {
    return this.state.height;
  }

  get trustedKeyIds(): string[] {
    return this.state.keys.map((k) => k.keyId);
  }

  /** One text frame (null: a binary frame, which the protocol does not use). */
  async handle(text: string | null): Promise<void> {
    const { metrics } = this.deps;
    const parsed = text === null ? ({ ok: false, reason: 'binary frame', seq: null, keyId: null } as const) : parseGovernanceFrame(text);
    if (!parsed.ok) return this.reject('malformed', parsed.seq, parsed.keyId, parsed.reason);
    const m = parsed.message;
    const key = this.trusted.get(m.keyId);
    if (!key) {
      metrics.signatureMismatches.inc();
      return this.reject('unknown-key', m.seq, m.keyId, 'the key is not trusted (unknown or retired)');
    }
    if (!verifyMessage(key, m.seq, m.type, m.payload, m.signature)) {
      metrics.signatureMismatches.inc();
      return this.reject('bad-signature', m.seq, m.keyId, 'the signature does not verify');
    }
    metrics.signatureMatches.inc();
    if (m.seq <= this.height) {
      metrics.frames.inc({ outcome: 'replay' });
      this.deps.log.debug({ seq: m.seq, height: this.height }, 'governance replay ignored');
      return;
    }
    if (m.seq > this.height + 1) {
      return this.reject('gap', m.seq, m.keyId, `expected seq ${this.height + 1}`);
    }
    let appliedHere = true;
    try {
      const lease = this.deps.lease;
      const recorded = lease ? await this.deps.store.height() : this.height;
      let next: GovernanceState;
      if (recorded >= m.seq) {
        appliedHere = false;
        next = { ...this.state, height: m.seq, ...(m.type === 'key.rotate' ? { keys: rotate(this.state.keys, m.parsed) } : {}) };
      } else if (lease && lease.current() === undefined) {
        return this.reject('pending', m.seq, m.keyId, 'another instance of the cluster applies governance: waiting for it');
      } else {
        next = await this.applyOne(m);
        await this.deps.store.commit(next);
      }
      this.state = next;
      if (m.type === 'key.rotate') this.trust(next.keys);
    } catch (err) {
      return this.reject('apply-failed', m.seq, m.keyId, (err as Error)?.message ?? String(err), err);
    }
    metrics.frames.inc({ outcome: 'applied' });
    metrics.height.set(m.seq);
    this.deps.log.info(
      { seq: m.seq, type: m.type, keyId: m.keyId, ...(appliedHere ? {} : { by: 'another instance' }) },
      'governance message applied',
    );
    try {
      this.deps.onApplied?.({ seq: m.seq, type: m.type, keyId: m.keyId });
    } catch (err) {
      this.deps.log.warn({ seq: m.seq, type: m.type, err: describeError(err) }, 'governance onApplied callback failed');
    }
  }

  /** Runs the message's effect and returns the state to record with it. */
  private async applyOne(m: ParsedMessage): Promise<GovernanceState> {
    const meta: ApplyMeta = { seq: m.seq, keyId: m.keyId };
    const { apply } = this.deps;
    const next = { ...this.state, height: m.seq };
    switch (m.type) {
      case 'endpoint.upsert':
        await apply.endpointUpsert(m.parsed, meta);
        break;
      case 'endpoint.delete':
        await apply.endpointDelete(m.parsed, meta);
        break;
      case 'endpoint.pause':
        await apply.endpointPause(m.parsed, meta);
        break;
      case 'endpoint.resume':
        await apply.endpointResume(m.parsed, meta);
        break;
      case 'subscription.upsert':
        await apply.subscriptionUpsert(m.parsed, meta);
        break;
      case 'subscription.delete':
        await apply.subscriptionDelete(m.parsed, meta);
        break;
      case 'key.rotate':
        next.keys = rotate(this.state.keys, m.parsed);
        this.deps.log.warn(
          { seq: m.seq, added: m.parsed.add.keyId, retired: m.parsed.retire, signedBy: m.keyId },
          'governance signing key rotated',
        );
        break;
    }
    return next;
  }

  private trust(keys: TrustedKey[]): void {
    this.trusted = new Map(keys.map((k) => [k.keyId, parsePublicKey(k.publicKey)]));
  }

  private reject(outcome: FrameOutcome, seq: number | null, keyId: string | null, reason: string, err?: unknown): void {
    this.deps.metrics.frames.inc({ outcome });
    this.lastError = { message: `${outcome}${seq === null ? '' : ` at seq ${seq}`}: ${reason}`, at: Date.now() };
    if (this.mayLog(outcome)) {
      const code = CODE_BY_OUTCOME[outcome];
      const context = {
        seq,
        keyId,
        reason,
        outcome,
        height: this.height,
        ...(code ? { code } : {}),
        ...(err ? { err: describeError(err) } : {}),
      };
      if (outcome === 'gap') this.deps.log.info(context, 'governance message out of order: asking again');
      else if (outcome === 'pending') this.deps.log.info(context, 'governance message not applied yet by the lease holder: asking again');
      else this.deps.log.warn(context, 'governance message rejected');
    }
    if (seq === null || seq > this.height) this.deps.onNeed(this.height + 1);
  }

  private mayLog(outcome: FrameOutcome): boolean {
    const now = Date.now();
    const w = this.logWindow.get(outcome);
    if (!w || now - w.start > LOG_PERIOD_MS) {
      this.logWindow.set(outcome, { start: now, count: 1 });
      return true;
    }
    return ++w.count <= LOG_BURST;
  }
}

/** The key set after a rotation: the retired keys out, the new one in (once). */
export function rotate(keys: TrustedKey[], p: GovernancePayload<'key.rotate'>): TrustedKey[] {
  const kept = keys.filter((k) => !p.retire.includes(k.keyId) && k.keyId !== p.add.keyId);
  return [...kept, { keyId: p.add.keyId, publicKey: spkiBase64(parsePublicKey(p.add.publicKey)) }];
}
