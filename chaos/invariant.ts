/**
 * The durability invariant of a chaos run: a pure function of what the chain says and what the
 * receiver got (the runner calls it until nothing is owed any more or time is up; tests call it on
 * crafted and doctored runs to prove each check can fail).
 *
 * What the chain says, fetched from anvil by the harness: `chainId`; `canonical`, the contract's logs
 * on the chain at the end; `orphaned`, every log of the contract a reorg took off the chain during the
 * run (read just before the reorg). A log is known by its block hash and log index; a log can be in
 * both lists (orphaned, then canonical again). What the receiver got: every request in arrival order,
 * with its headers, body, reply and signature check. `subscriptions` are the subscriptions checked;
 * each of them matches every log of the contract.
 *
 * A webhook is an id's first request answered 2xx (later 2xx of the same id are duplicates a receiver
 * drops). Its generation is the one whose webhook-id it carries (src/actors/matcher/jobs.ts: a block
 * retracted n times gets `|n`; the `log.removed` retracting a `log.created` has its generation). The
 * invariant holds when every check below counts zero:
 * - `lost`: (canonical log, subscription) pairs with no `log.created` webhook;
 * - `missingRemovals`: `log.created` webhooks of a log no longer canonical without the `log.removed`
 *   webhook of the same generation;
 * - `wrongRemovals`: `log.removed` webhooks of a canonical log that no `log.created` of a later
 *   generation followed;
 * - `unexpected`: requests that are not a delivery of a log of the chain to a checked subscription: a
 *   body that is not a `log.created` / `log.removed`, a subscription not checked, a log the chain
 *   never had (neither canonical nor orphaned);
 * - `idMismatches`: ids that are not the webhook-id of their payload, for any generation;
 * - `bodyMismatches`: ids whose requests did not all carry the same body, retries and redeliveries alike;
 * - `badSignatures`: requests whose signature did not verify;
 * - `payloadMismatches`: bodies that disagree with the chain's log: fields other than the documented
 *   `type, timestamp, data{chainId, blockNumber, blockHash, transactionHash, logIndex, address, topics,
 *   data, subscriptionId}`, or any value from the chain that differs (chainId; blockNumber, logIndex as
 *   numbers; hashes, address, topics and data as the chain gives them, lowercased; a `log.created`'s
 *   timestamp is its block's, ISO 8601; a `log.removed`'s, the moment it was seen, must parse);
 * - `removalsWithoutCreation`: `log.removed` webhooks whose `log.created` (same subscription, log and
 *   generation) never came;
 * - `removalsBeforeCreation`: `log.removed` webhooks whose `log.created` came, after them;
 * - `redeliveredWithoutRemoval`: `log.created` webhooks of a later generation arriving while the
 *   receiver holds the log as created by another generation not retracted yet (the log twice).
 * `owed` sums the checks that more deliveries can still clear (lost, missing removals, removals
 * without their creation): the runner waits for it to reach zero; the others are final once counted.
 * Figures: `duplicates` (2xx requests beyond the first of an id), `retries` (requests beyond the first
 * of an id, failed ones included).
 */
import { webhookId } from '../src/actors/matcher/jobs.ts';
import type { ReceivedRequest } from '../test/support/receiver.ts';
import { byWebhookId, succeeded, type RpcLog, type WebhookBody } from '../test/e2e/e2e-chain.ts';

/** A log as anvil's `eth_getLogs` gives it, with its block's timestamp (a hex quantity, seconds). */
export interface ChainLog extends RpcLog {
  blockTimestamp: string;
}

export interface Observation {
  chainId: number;
  canonical: readonly ChainLog[];
  orphaned: readonly ChainLog[];
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
  /** Delivered log.created webhooks of orphaned logs, and log.removed webhooks delivered. */
  orphanedDelivered: number;
  removed: number;
  missingRemovals: number;
  /** A few `subscription|blockHash:logIndex#generation` created and never retracted, to start looking from. */
  missingRemovalSample: string[];
  wrongRemovals: number;
  unexpected: number;
  idMismatches: number;
  bodyMismatches: number;
  badSignatures: number;
  payloadMismatches: number;
  /** A few bodies that disagree with the chain, with the first field that does. */
  payloadSample: string[];
  removalsWithoutCreation: number;
  removalsBeforeCreation: number;
  redeliveredWithoutRemoval: number;
  /** Counts more deliveries can still clear: lost + missingRemovals + removalsWithoutCreation. */
  owed: number;
}

/** Generations tried when matching an id to its payload. */
const GENERATIONS = 4;
const SAMPLE = 5;
const BODY_KEYS = ['data', 'timestamp', 'type'].join();
const DATA_KEYS = [
  'address',
  'blockHash',
  'blockNumber',
  'chainId',
  'data',
  'logIndex',
  'subscriptionId',
  'topics',
  'transactionHash',
].join();

const logKey = (blockHash: string, logIndex: number) => `${blockHash.toLowerCase()}:${logIndex}`;
const chainLogKey = (log: ChainLog) => logKey(log.blockHash, Number.parseInt(log.logIndex, 16));
const pairKey = (sub: string, key: string) => `${sub}|${key}`;

/** The generation whose webhook-id `id` is for this body, or -1 when none is. */
function generationOf(id: string, body: WebhookBody): number {
  const d = body.data;
  for (let g = 0; g < GENERATIONS; g++) {
    if (webhookId(d.chainId, d.blockHash, d.logIndex, d.subscriptionId, body.type, g) === id) return g;
  }
  return -1;
}

function isDelivery(json: unknown): json is WebhookBody {
  const b = json as Partial<WebhookBody> | null | undefined;
  return (
    typeof b === 'object' &&
    b !== null &&
    (b.type === 'log.created' || b.type === 'log.removed') &&
    typeof b.data === 'object' &&
    b.data !== null &&
    typeof b.data.blockHash === 'string' &&
    typeof b.data.logIndex === 'number' &&
    typeof b.data.subscriptionId === 'string'
  );
}

/** The first field of `body` that disagrees with the chain's `log`, or undefined when none does. */
export function payloadDifference(body: WebhookBody, log: ChainLog, chainId: number): string | undefined {
  if (Object.keys(body).sort().join() !== BODY_KEYS) return 'body fields';
  const d = body.data;
  if (Object.keys(d).sort().join() !== DATA_KEYS) return 'data fields';
  const hex = (s: string) => s.toLowerCase();
  const same: Array<[string, boolean]> = [
    ['chainId', d.chainId === chainId],
    ['blockNumber', d.blockNumber === Number.parseInt(log.blockNumber, 16)],
    ['blockHash', d.blockHash === hex(log.blockHash)],
    ['transactionHash', d.transactionHash === hex(log.transactionHash)],
    ['logIndex', d.logIndex === Number.parseInt(log.logIndex, 16)],
    ['address', d.address === hex(log.address)],
    ['topics', Array.isArray(d.topics) && d.topics.length === log.topics.length && d.topics.every((t, i) => t === hex(log.topics[i]!))],
    ['data', d.data === hex(log.data)],
    [
      'timestamp',
      body.type === 'log.created'
        ? body.timestamp === new Date(Number.parseInt(log.blockTimestamp, 16) * 1_000).toISOString()
        : typeof body.timestamp === 'string' && !Number.isNaN(Date.parse(body.timestamp)),
    ],
  ];
  return same.find(([, equal]) => !equal)?.[0];
}

/** The checks: the invariant holds when each counts zero. */
export const FAILURES = [
  'lost',
  'missingRemovals',
  'wrongRemovals',
  'unexpected',
  'idMismatches',
  'bodyMismatches',
  'badSignatures',
  'payloadMismatches',
  'removalsWithoutCreation',
  'removalsBeforeCreation',
  'redeliveredWithoutRemoval',
] as const satisfies ReadonlyArray<keyof Verdict>;

/** What the receiver holds of one (subscription, log) pair, webhook after webhook. */
interface PairHistory {
  created: Set<number>;
  /** Generations created and not retracted yet. */
  live: Set<number>;
  /** Generations retracted before (or without) their creation. */
  early: Set<number>;
  removed: Set<number>;
}

export function checkInvariant(obs: Observation): Verdict {
  const chainLogs = new Map<string, ChainLog>();
  for (const log of [...obs.orphaned, ...obs.canonical]) chainLogs.set(chainLogKey(log), log);
  const canonical = new Set(obs.canonical.map(chainLogKey));
  const subscriptions = new Set(obs.subscriptions);
  const expected = new Set<string>();
  for (const key of canonical) for (const sub of obs.subscriptions) expected.add(pairKey(sub, key));

  const deliveredPairs = new Set<string>();
  const histories = new Map<string, PairHistory>();
  const history = (pair: string): PairHistory => {
    let h = histories.get(pair);
    if (!h) histories.set(pair, (h = { created: new Set(), live: new Set(), early: new Set(), removed: new Set() }));
    return h;
  };
  let duplicates = 0;
  let retries = 0;
  let unexpected = 0;
  let idMismatches = 0;
  let bodyMismatches = 0;
  let payloadMismatches = 0;
  let redeliveredWithoutRemoval = 0;
  const payloadSample: string[] = [];
  const badSignatures = obs.requests.filter((r) => r.verified !== true).length;

  for (const attempts of byWebhookId(obs.requests).values()) {
    retries += attempts.length - 1;
    duplicates += Math.max(0, attempts.filter(succeeded).length - 1);
    if (new Set(attempts.map((a) => a.body)).size > 1) bodyMismatches++;
  }
  // Every distinct body the node sent, against the chain.
  const checkedBodies = new Set<string>();
  for (const r of obs.requests) {
    if (checkedBodies.has(r.body)) continue;
    checkedBodies.add(r.body);
    if (!isDelivery(r.json)) continue;
    const log = chainLogs.get(logKey(r.json.data.blockHash, r.json.data.logIndex));
    const differs = log ? payloadDifference(r.json, log, obs.chainId) : undefined;
    if (differs === undefined) continue;
    payloadMismatches++;
    if (payloadSample.length < SAMPLE) payloadSample.push(`${r.webhookId ?? '(no id)'}: ${differs}`);
  }
  // Webhooks (the first 2xx of each id) in arrival order.
  const seen = new Set<string>();
  for (const r of obs.requests) {
    const id = r.webhookId ?? '(none)';
    if (!succeeded(r) || seen.has(id)) continue;
    seen.add(id);
    const body = r.json;
    if (!isDelivery(body)) {
      unexpected++;
      continue;
    }
    const key = logKey(body.data.blockHash, body.data.logIndex);
    if (!subscriptions.has(body.data.subscriptionId) || !chainLogs.has(key)) {
      unexpected++;
      continue;
    }
    const pair = pairKey(body.data.subscriptionId, key);
    if (body.type === 'log.created' && canonical.has(key)) deliveredPairs.add(pair);
    const generation = generationOf(id, body);
    if (generation < 0) {
      idMismatches++;
      continue;
    }
    const h = history(pair);
    if (body.type === 'log.created') {
      if ([...h.live].some((g) => g !== generation)) redeliveredWithoutRemoval++;
      h.created.add(generation);
      if (!h.early.has(generation)) h.live.add(generation);
    } else {
      if (!h.created.has(generation)) h.early.add(generation);
      h.live.delete(generation);
      h.removed.add(generation);
    }
  }

  let orphanedDelivered = 0;
  let removed = 0;
  let missingRemovals = 0;
  const missingRemovalSample: string[] = [];
  let wrongRemovals = 0;
  let removalsWithoutCreation = 0;
  let removalsBeforeCreation = 0;
  for (const [pair, h] of histories) {
    const isCanonical = canonical.has(pair.slice(pair.indexOf('|') + 1));
    removed += h.removed.size;
    for (const g of h.early) {
      if (h.created.has(g)) removalsBeforeCreation++;
      else removalsWithoutCreation++;
    }
    if (!isCanonical) {
      orphanedDelivered += h.created.size;
      const missing = [...h.created].filter((g) => !h.removed.has(g));
      missingRemovals += missing.length;
      for (const g of missing) if (missingRemovalSample.length < SAMPLE) missingRemovalSample.push(`${pair}#${g}`);
    } else {
      wrongRemovals += [...h.removed].filter((g) => ![...h.created].some((later) => later > g)).length;
    }
  }

  const lostPairs = [...expected].filter((p) => !deliveredPairs.has(p));
  const verdict: Omit<Verdict, 'ok'> = {
    expected: expected.size,
    delivered: deliveredPairs.size,
    lost: lostPairs.length,
    lostSample: lostPairs.slice(0, SAMPLE),
    duplicates,
    retries,
    requests: obs.requests.length,
    orphanedDelivered,
    removed,
    missingRemovals,
    missingRemovalSample,
    wrongRemovals,
    unexpected,
    idMismatches,
    bodyMismatches,
    badSignatures,
    payloadMismatches,
    payloadSample,
    removalsWithoutCreation,
    removalsBeforeCreation,
    redeliveredWithoutRemoval,
    owed: lostPairs.length + missingRemovals + removalsWithoutCreation,
  };
  return { ok: FAILURES.every((k) => verdict[k] === 0), ...verdict };
}
