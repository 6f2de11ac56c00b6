/**
 * The GovernanceStream's metrics, created once per prom-client registry (a restarted behaviour finds
 * the same instruments again).
 *
 * - `governance_stream_connected`: 1 while the WebSocket to the governance server is up.
 * - `governance_height`: the last applied sequence number.
 * - `signature_matches_total`: well-formed messages whose signature verified with a trusted key.
 * - `signature_mismatches_total`: well-formed messages rejected for their signature: a key that is not
 *   trusted (unknown or retired) or a signature that does not verify.
 * - `governance_frames_total{outcome}`: every frame received, by what became of it (FRAME_OUTCOMES),
 *   so malformed, replayed and out-of-order frames are counted too.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export const FRAME_OUTCOMES = [
  'applied', // verified, in sequence, applied and recorded
  'replay', // seq <= height: already applied, ignored
  'gap', // seq > height + 1: ignored, the stream is asked again from height + 1
  'malformed', // not JSON, bad envelope, unknown type or invalid payload
  'unknown-key', // keyId not in the trusted set
  'bad-signature', // the signature does not verify under the named key
  'apply-failed', // the applier rejected it; asked again after a backoff
  'pending', // in a cluster: not applied yet by the instance holding the governance lease; asked again after a backoff
] as const;
export type FrameOutcome = (typeof FRAME_OUTCOMES)[number];

export interface GovernanceMetrics {
  connected: Gauge;
  height: Gauge;
  signatureMatches: Counter;
  signatureMismatches: Counter;
  frames: Counter<'outcome'>;
}

const byRegistry = new WeakMap<Registry, GovernanceMetrics>();

export function getGovernanceMetrics(registry: Registry): GovernanceMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const metrics: GovernanceMetrics = {
    connected: new Gauge({ name: 'governance_stream_connected', help: '1 while the governance WebSocket is up', registers }),
    height: new Gauge({ name: 'governance_height', help: 'Last applied governance sequence number', registers }),
    signatureMatches: new Counter({
      name: 'signature_matches_total',
      help: 'Governance messages whose Ed25519 signature verified with a trusted key',
      registers,
    }),
    signatureMismatches: new Counter({
      name: 'signature_mismatches_total',
      help: 'Governance messages rejected for an untrusted key or a signature that does not verify',
      registers,
    }),
    frames: new Counter({
      name: 'governance_frames_total',
      help: 'Governance frames received, by outcome',
      labelNames: ['outcome'],
      registers,
    }),
  };
  for (const outcome of FRAME_OUTCOMES) metrics.frames.inc({ outcome }, 0);
  byRegistry.set(registry, metrics);
  return metrics;
}
