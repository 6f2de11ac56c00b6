/**
 * The follower's ChainSource when a chain has several providers: reads go to the active provider, and
 * the other providers are asked whenever one provider's word should not be enough.
 *
 * - `ceiling()`: the height `quorum` providers have reached (provider-pool.ts `quorumHeight`); the
 *   follower emits nothing above it. With quorum 1 there is no ceiling.
 * - `confirm(header)`, before a read is emitted (quorum > 1): the other usable providers are asked for
 *   the block at the header's height; it passes when `quorum` providers (the active one included) show
 *   its hash. Blocks chain by parent hash, so the last block of a range vouches for the whole range.
 * - `corroborate(n, emitted, canonical)`, before a reorg is acted on: the active provider shows
 *   `canonical` at height `n` where `emitted` was emitted. With no other provider up, its word is taken
 *   (a chain with one provider, quorum 1). Otherwise the others are asked for height `n`:
 *   - more providers still show `emitted` than show `canonical` (the active one counted): the active
 *     provider is the odd one (a lagging backend on a stale fork, or a liar):
 *     ETHHOOK_ERR_PROVIDER_DISAGREES, the listener reads from another provider, nothing is retracted;
 *   - as many, and a provider showing `emitted` has a higher head than the active one: the active
 *     provider is the odd one likewise (a stale fork is the shorter one); otherwise wait;
 *   - fewer: the reorg is acted on once another provider and `quorum` providers in all show
 *     `canonical`; until then, wait.
 * - In both, a provider answering another hash than the active one is counted in
 *   `chain_provider_disagreements_total` (once per provider and height: `disagreed`) and logged; a
 *   provider that does not answer in time, or does not have the block, casts no vote. The questions go
 *   out in parallel, at most one per provider; providers held off do not vote.
 */
import { EthhookError } from '../../runtime/errors.ts';
import type { BlockHeader } from './eth-schemas.ts';
import type { ChainSource } from './follower.ts';
import type { ChainLog } from './messages.ts';
import type { ProviderSession } from './provider.ts';

export interface PoolSourceDeps {
  active: ProviderSession;
  /** The other providers whose sessions are up and that are not held off (asked for votes). */
  others(): ProviderSession[];
  quorum: number;
  /** The quorum height now (provider-pool.ts). */
  quorumHeight(): number;
  /** Counts and logs a disagreement, once per provider and height. */
  disagreed(provider: string, n: number, hash: string, activeHash: string): void;
}

export class PoolSource implements ChainSource {
  readonly maxBlockRange: number | undefined;

  constructor(private readonly deps: PoolSourceDeps) {
    this.maxBlockRange = deps.active.config.maxBlockRange;
  }

  headerByNumber(n: number): Promise<BlockHeader | null> {
    return this.deps.active.source.headerByNumber(n);
  }

  headersByRange(from: number, to: number): Promise<Array<BlockHeader | null>> {
    return this.deps.active.source.headersByRange(from, to);
  }

  logsByRange(from: number, to: number): Promise<ChainLog[]> {
    return this.deps.active.source.logsByRange(from, to);
  }

  logsByBlockHash(hash: string): Promise<ChainLog[]> {
    return this.deps.active.source.logsByBlockHash(hash);
  }

  ceiling(): number | undefined {
    return this.deps.quorum > 1 ? this.deps.quorumHeight() : undefined;
  }

  async confirm(header: BlockHeader): Promise<boolean> {
    if (this.deps.quorum <= 1) return true;
    const votes = await this.votes(header.number, header.hash);
    if ((votes.get(header.hash) ?? 0) + 1 >= this.deps.quorum) return true;
    this.outvoted(votes, header.hash, header.number);
    return false;
  }

  async corroborate(n: number, emitted: string, canonical: string): Promise<boolean> {
    const others = this.deps.others();
    if (others.length === 0) return this.deps.quorum <= 1;
    const answers = await this.ask(others, n, canonical);
    const forEmitted = answers.filter((a) => a.hash === emitted);
    const forCanonical = answers.filter((a) => a.hash === canonical).length + 1;
    const activeHead = this.deps.active.head?.header.number ?? -1;
    const emittedHead = Math.max(-1, ...forEmitted.map((a) => a.session.head?.header.number ?? -1));
    if (forEmitted.length > forCanonical || (forEmitted.length === forCanonical && emittedHead > activeHead)) {
      throw new EthhookError(
        'ETHHOOK_ERR_PROVIDER_DISAGREES',
        `provider ${this.deps.active.name} shows block ${n} as orphaned; ${forEmitted.length} other provider(s) still show it`,
        {
          provider: this.deps.active.name,
          block: n,
          hash: canonical,
          emitted,
        },
      );
    }
    return forEmitted.length < forCanonical && forCanonical >= 2 && forCanonical >= this.deps.quorum;
  }

  /** The other providers' hashes at height n (null: no answer); disagreements with `activeHash` counted. */
  private async ask(
    others: ProviderSession[],
    n: number,
    activeHash: string,
  ): Promise<Array<{ session: ProviderSession; hash: string | null }>> {
    const answers = await Promise.all(
      others.map((session) =>
        session.source.headerByNumber(n).then(
          (h) => ({ session, hash: h?.hash ?? null }),
          () => ({ session, hash: null }),
        ),
      ),
    );
    for (const { session, hash } of answers)
      if (hash !== null && hash !== activeHash) this.deps.disagreed(session.name, n, hash, activeHash);
    return answers;
  }

  /** Hash → number of other providers showing it at height n. */
  private async votes(n: number, activeHash: string): Promise<Map<string, number>> {
    const votes = new Map<string, number>();
    for (const { hash } of await this.ask(this.deps.others(), n, activeHash))
      if (hash !== null) votes.set(hash, (votes.get(hash) ?? 0) + 1);
    return votes;
  }

  /** Throws when another hash has the quorum (the active provider is the odd one); else the caller waits. */
  private outvoted(votes: Map<string, number>, activeHash: string, n: number): void {
    for (const [hash, count] of votes) {
      if (hash !== activeHash && count >= this.deps.quorum) {
        throw new EthhookError(
          'ETHHOOK_ERR_PROVIDER_DISAGREES',
          `provider ${this.deps.active.name} shows block ${n} with a hash ${count} other provider(s) contradict`,
          {
            provider: this.deps.active.name,
            block: n,
            hash: activeHash,
            quorumHash: hash,
          },
        );
      }
    }
  }
}
