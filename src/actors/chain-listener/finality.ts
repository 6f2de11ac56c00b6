/**
 * Finality: the chain's `safe` and `finalized` block numbers, which subscriptions with `finality: 'safe'`
 * or `'finalized'` wait for (the Matcher holds their jobs until their block is that final).
 *
 * `FinalityPoller` asks the listener's active provider `eth_getBlockByNumber(tag, false)` for both tags
 * every `finalityPollMs` (DEFAULT_FINALITY_POLL_MS, 6 s: half an Ethereum slot, so a new `safe` block is
 * seen within 6 s; two calls per period, through the provider's throttle). `FinalityTracker` (pure) judges
 * each answer, since a provider's answer is an input like any other:
 * - a header (headerSchema) at most the listener's head, and not below the height already trusted for
 *   the tag: `accepted`, the tag's height is known;
 * - `null`, or a JSON-RPC error answer (a node that does not know the tag): `unsupported`, the tag is
 *   unknown until an answer is accepted again, so jobs waiting for it wait (never released on a guess);
 * - a result that is no header: `malformed`; a height above the head the listener saw: `beyond-head`; a
 *   height below the one trusted already (another provider behind, a node restarted): `backwards`. None
 *   is trusted, and the tag keeps the height it had;
 * - a call that got no answer (timeout, connection, rate limit): `unreachable`, nothing changes.
 * A `finalized` block is `safe` too: the safe height handed on is the higher of the two.
 *
 * Metrics: `chain_safe_height{chain}` and `chain_finalized_height{chain}` (the trusted heights, 0 until
 * known), `chain_finality_known{chain,tag}` (1 while the tag's height is known), and
 * `chain_finality_rejected_total{chain,tag,reason}` for every answer not accepted. The poller logs a
 * verdict other than `accepted` once when it starts (with the chain, provider and tag) and once when the
 * tag is accepted again, not at every poll. The heights ride on every block the listener emits
 * (`finality` in chain.block), and the Matcher releases the jobs they make final in that block's turn;
 * after each poll `polled(proof)` hands them to the listener, which tells the Matcher at once when they
 * moved past what its last block carried (`chain.finality`): a block that becomes final while the chain
 * makes no new block is released within a poll, not at the next block. A height alone does not say
 * which branch is final, so the message names an anchor, a trusted block (number and hash), and the
 * Matcher releases on it only when its chain cursor holds that very block: `proof(processed)` gives the
 * higher tag's block when the listener has processed it, else the `finalized` block's with the heights
 * it proves (both tags at its height), else nothing.
 *
 * Memory: two numbers and two verdicts per chain.
 */
import type { Logger } from '../../runtime/log.ts';
import { describeError, isEthhookError } from '../../runtime/errors.ts';
import { Wakeup } from '../../runtime/timers.ts';
import { headerSchema } from './eth-schemas.ts';
import type { ChainMetrics } from './metrics.ts';
import type { RpcTransport } from './transport.ts';

export const FINALITY_TAGS = ['safe', 'finalized'] as const;
export type FinalityTag = (typeof FINALITY_TAGS)[number];

export const FINALITY_VERDICTS = ['accepted', 'unsupported', 'malformed', 'beyond-head', 'backwards', 'unreachable'] as const;
export type FinalityVerdict = (typeof FINALITY_VERDICTS)[number];
/** Verdicts counted in `chain_finality_rejected_total`. */
export const FINALITY_REJECTIONS = FINALITY_VERDICTS.filter((v) => v !== 'accepted');

export const DEFAULT_FINALITY_POLL_MS = 6_000;

/** What the listener knows of its chain's finality; a tag absent is unknown. */
export interface FinalityHeights {
  safe?: number;
  finalized?: number;
}

/** The block a tag's height was trusted from. */
export interface FinalityAnchor {
  number: number;
  hash: string;
}

/** Heights and the trusted block that proves them, for a receiver that holds that block (`proof`). */
export interface FinalityProof {
  heights: FinalityHeights;
  anchor: FinalityAnchor;
}

/** One answer to `eth_getBlockByNumber(tag)`: its result, or the error its call failed with. */
export type FinalityAnswer = { result: unknown } | { error: unknown };

const nullableHeader = headerSchema.nullable();

/** The trusted height of each tag, and the rules an answer must pass (see the header). */
export class FinalityTracker {
  private readonly trusted: Partial<Record<FinalityTag, number>> = {};
  private readonly hashes: Partial<Record<FinalityTag, string>> = {};
  private readonly known: Partial<Record<FinalityTag, boolean>> = {};

  note(tag: FinalityTag, answer: FinalityAnswer, head: number | undefined): FinalityVerdict {
    if ('error' in answer) {
      if (!isEthhookError(answer.error, 'ETHHOOK_ERR_RPC_ERROR')) return 'unreachable';
      this.known[tag] = false;
      return 'unsupported';
    }
    const parsed = nullableHeader.safeParse(answer.result);
    if (!parsed.success) return 'malformed';
    if (parsed.data === null) {
      this.known[tag] = false;
      return 'unsupported';
    }
    const n = parsed.data.number;
    if (head !== undefined && n > head) return 'beyond-head';
    if (n < (this.trusted[tag] ?? 0)) return 'backwards';
    this.trusted[tag] = n;
    this.hashes[tag] = parsed.data.hash;
    this.known[tag] = true;
    return 'accepted';
  }

  /** The known heights (`safe` at least `finalized`). */
  heights(): FinalityHeights {
    const finalized = this.known.finalized ? this.trusted.finalized : undefined;
    const safe = this.known.safe ? Math.max(this.trusted.safe!, finalized ?? 0) : finalized;
    return { ...(safe === undefined ? {} : { safe }), ...(finalized === undefined ? {} : { finalized }) };
  }

  /** The block of the highest known height (`heights().safe`), undefined while no tag is known. */
  anchor(): FinalityAnchor | undefined {
    const tag: FinalityTag | undefined =
      this.known.finalized && (!this.known.safe || this.trusted.finalized! >= this.trusted.safe!)
        ? 'finalized'
        : this.known.safe
          ? 'safe'
          : undefined;
    return tag === undefined ? undefined : { number: this.trusted[tag]!, hash: this.hashes[tag]! };
  }

  /**
   * What a receiver that has processed blocks up to `atMost` can check: the known heights with the
   * block of the highest (`anchor()`) when that block is at or below `atMost`; else the `finalized`
   * block's, if it is, with `finalized` standing for both tags (a finalized block is safe too); else
   * nothing. A listener with confirmations processes blocks behind the head, and `safe` is often within
   * them.
   */
  proof(atMost: number): FinalityProof | undefined {
    const anchor = this.anchor();
    if (anchor !== undefined && anchor.number <= atMost) return { heights: this.heights(), anchor };
    if (!this.known.finalized || this.trusted.finalized! > atMost) return undefined;
    const finalized = this.trusted.finalized!;
    return { heights: { safe: finalized, finalized }, anchor: { number: finalized, hash: this.hashes.finalized! } };
  }
}

export interface FinalityPollerDeps {
  chain: string;
  intervalMs: number;
  /** The provider read from now (null: none). */
  active(): { name: string; transport: RpcTransport } | null;
  /** The head the listener last saw (undefined: none yet). */
  head(): number | undefined;
  metrics: ChainMetrics;
  log: Logger;
  signal: AbortSignal;
  /** After each poll, what a receiver that processed blocks up to a height can check (FinalityTracker.proof). */
  polled?(proof: (atMost: number) => FinalityProof | undefined): void;
}

export class FinalityPoller {
  private readonly tracker = new FinalityTracker();
  private readonly wakeup: Wakeup;
  private readonly last = new Map<FinalityTag, FinalityVerdict>();
  private running: Promise<void> | null = null;

  constructor(private readonly deps: FinalityPollerDeps) {
    this.wakeup = new Wakeup(deps.signal);
  }

  heights(): FinalityHeights {
    return this.tracker.heights();
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Resolves once the loop ended (after the signal aborted). */
  async stopped(): Promise<void> {
    this.wakeup.wake();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.deps.signal.aborted) {
      await this.poll();
      if (!this.deps.signal.aborted) this.deps.polled?.((atMost) => this.tracker.proof(atMost));
      await this.wakeup.wait(this.deps.intervalMs);
    }
  }

  /** One poll of both tags from the active provider (nothing without one). */
  async poll(): Promise<void> {
    const provider = this.deps.active();
    if (!provider) return;
    await Promise.all(
      FINALITY_TAGS.map(async (tag) => {
        let answer: FinalityAnswer;
        try {
          answer = { result: await provider.transport.request('eth_getBlockByNumber', [tag, false]) };
        } catch (err) {
          answer = { error: err };
        }
        if (this.deps.signal.aborted) return;
        this.judged(tag, this.tracker.note(tag, answer, this.deps.head()), provider.name, answer);
      }),
    );
  }

  private judged(tag: FinalityTag, verdict: FinalityVerdict, provider: string, answer: FinalityAnswer): void {
    const { metrics, chain, log } = this.deps;
    const heights = this.tracker.heights();
    metrics.safeHeight.set({ chain }, heights.safe ?? 0);
    metrics.finalizedHeight.set({ chain }, heights.finalized ?? 0);
    metrics.finalityKnown.set({ chain, tag }, heights[tag] === undefined ? 0 : 1);
    if (verdict !== 'accepted') metrics.finalityRejected.inc({ chain, tag, reason: verdict });
    const before = this.last.get(tag);
    this.last.set(tag, verdict);
    if (verdict === before || (verdict === 'accepted' && before === undefined)) return;
    if (verdict === 'accepted') {
      log.info({ tag, provider, height: heights[tag] }, `chain ${tag} block known again`);
      return;
    }
    const context = {
      tag,
      provider,
      verdict,
      head: this.deps.head(),
      ...('error' in answer ? { err: { ...describeError(answer.error), stack: undefined } } : {}),
    };
    log.warn(
      context,
      verdict === 'unsupported'
        ? `the provider does not report the chain's ${tag} block: subscriptions with finality '${tag}' wait until it does`
        : `the provider's ${tag} block is not trusted (${verdict})`,
    );
  }
}
