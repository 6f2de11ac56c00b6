/**
 * The durability invariant of a chaos run, checked on what the receiver saw against what the chain
 * holds (a pure function: the runner calls it until it holds or time is up; tests call it on doctored
 * inputs to prove it can fail).
 *
 * Inputs: the chain's canonical logs of the contract at the end, the subscriptions, every request the
 * receiver got (with its reply and signature check). It holds when:
 * - every canonical log reached the receiver with a 2xx, as `log.created`, once per subscription at
 *   least (`lost` = expected pairs with no 2xx delivery);
 * - every `log.created` delivered for a log that is not canonical (orphaned by a reorg) was followed
 *   by a delivered `log.removed` of the same log and subscription (`missingRemovals`);
 * - no canonical log was retracted (`wrongRemovals`), unless it came back with a later generation
 *   (a block retracted, then canonical again: src/actors/matcher/README.md, "generation");
 * - nothing else was delivered: no `log.created` of a canonical log for a subscription that does not
 *   match it (`unexpected`), no `webhook-id` other than the one the payload gives (`idMismatches`);
 * - every request carrying one `webhook-id` carried the same body, retries and redeliveries alike
 *   (`bodyMismatches`), and every signature verified (`badSignatures`).
 * Figures: `duplicates` (2xx deliveries beyond the first of an id), `retries` (requests beyond the
 * first of an id, failed ones included).
 */
import { webhookId } from '../src/actors/matcher/jobs.ts';
import type { ReceivedRequest } from '../test/support/receiver.ts';
import { byWebhookId, payloadData, succeeded, type RpcLog, type WebhookBody } from '../test/e2e/e2e-chain.ts';

export interface Observation {
  canonical: readonly RpcLog[];
  subscriptions: readonly string[];
  requests: readonly ReceivedRequest[];
}

export interface Verdict {
  ok: boolean;
  /** (log, subscription) pairs that must be delivered as log.created. */
  expected: number;
  /** Expected pairs delivered with a 2xx at least once. */
  delivered: number;
  lost: number;
  /** A few lost pairs, to start looking from. */
  lostSample: string[];
  duplicates: number;
  retries: number;
  requests: number;
  /** Delivered log.created of orphaned logs, and how many of them got their log.removed. */
  orphanedDelivered: number;
  removed: number;
  missingRemovals: number;
  wrongRemovals: number;
  unexpected: number;
  idMismatches: number;
  bodyMismatches: number;
  badSignatures: number;
}

/** Generations tried when matching an id to its payload (a block retracted and canonical again gets `|g`). */
const GENERATIONS = 4;

const logKey = (blockHash: string, logIndex: number) => `${blockHash.toLowerCase()}:${logIndex}`;
const pairKey = (sub: string, blockHash: string, logIndex: number) => `${sub}|${logKey(blockHash, logIndex)}`;

/** The generation whose webhook-id the request carries, or -1 when it matches none. */
function generationOf(id: string, body: WebhookBody): number {
  const d = body.data;
  for (let g = 0; g < GENERATIONS; g++) {
    if (webhookId(d.chainId, d.blockHash, d.logIndex, d.subscriptionId, body.type, g) === id) return g;
  }
  return -1;
}

export function checkInvariant(obs: Observation): Verdict {
  const expected = new Set<string>();
  const canonical = new Set<string>();
  for (const log of obs.canonical) {
    const d = payloadData(log, '');
    canonical.add(logKey(d.blockHash, d.logIndex));
    for (const sub of obs.subscriptions) expected.add(pairKey(sub, d.blockHash, d.logIndex));
  }
  const deliveredPairs = new Set<string>();
  const orphaned = new Set<string>();
  const removedPairs = new Set<string>();
  const removedCanonical: string[] = [];
  const laterGeneration = new Set<string>();
  let duplicates = 0;
  let retries = 0;
  let unexpected = 0;
  let idMismatches = 0;
  let bodyMismatches = 0;
  const badSignatures = obs.requests.filter((r) => r.verified !== true).length;

  for (const [id, attempts] of byWebhookId(obs.requests)) {
    retries += attempts.length - 1;
    if (new Set(attempts.map((a) => a.body)).size > 1) bodyMismatches++;
    const ok = attempts.filter(succeeded);
    if (ok.length === 0) continue;
    duplicates += ok.length - 1;
    const body = ok[0]!.json as WebhookBody | undefined;
    if (!body?.data || (body.type !== 'log.created' && body.type !== 'log.removed')) {
      unexpected++;
      continue;
    }
    const generation = generationOf(id, body);
    if (generation < 0) idMismatches++;
    const pair = pairKey(body.data.subscriptionId, body.data.blockHash, body.data.logIndex);
    const isCanonical = canonical.has(logKey(body.data.blockHash, body.data.logIndex));
    if (body.type === 'log.created') {
      if (generation > 0) laterGeneration.add(pair);
      if (expected.has(pair)) deliveredPairs.add(pair);
      else if (isCanonical) unexpected++;
      else orphaned.add(pair);
    } else {
      removedPairs.add(pair);
      if (isCanonical) removedCanonical.push(pair);
    }
  }

  const lostPairs = [...expected].filter((p) => !deliveredPairs.has(p));
  const missingRemovals = [...orphaned].filter((p) => !removedPairs.has(p)).length;
  const wrongRemovals = removedCanonical.filter((p) => !laterGeneration.has(p)).length;
  const verdict: Omit<Verdict, 'ok'> = {
    expected: expected.size,
    delivered: deliveredPairs.size,
    lost: lostPairs.length,
    lostSample: lostPairs.slice(0, 5),
    duplicates,
    retries,
    requests: obs.requests.length,
    orphanedDelivered: orphaned.size,
    removed: removedPairs.size,
    missingRemovals,
    wrongRemovals,
    unexpected,
    idMismatches,
    bodyMismatches,
    badSignatures,
  };
  const ok = verdict.lost === 0 && missingRemovals === 0 && wrongRemovals === 0 && unexpected === 0 &&
    idMismatches === 0 && bodyMismatches === 0 && badSignatures === 0;
  return { ok, ...verdict };
}
