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
 *   `canonical` at height `n` where `emitted` was emitted. The other usable providers are asked for
 *   height `n`. When more of them still show `emitted` than show `canonical`, the active provider is
 *   the odd one (a lagging backend on a stale fork, or a liar): ETHHOOK_ERR_PROVIDER_DISAGREES, and the
 *   listener reads from another provider; nothing is retracted. Otherwise the reorg is acted on once
 *   `quorum` providers show `canonical`.
 * - In both, a provider answering another hash than the active one is counted in
 *   `chain_provider_disagreements_total` and logged; a provider that does not answer in time, or does
 *   not have the block, casts no vote. The questions go out in parallel, at most one per provider.
 */
import { EthhookError } from '../../runtime/errors.ts';
import type { Logger } from '../../runtime/log.ts';
import type { BlockHeader } from './eth-schemas.ts';
import type { ChainSource } from './follower.ts';
import type { ChainLog } from './messages.ts';
import type { ChainMetrics } from './metrics.ts';
import type { ProviderSession } from './provider.ts';

export interface PoolSourceDeps {
  chain: string;
  active: ProviderSession;
  /** The other providers whose sessions are up (asked for votes). */
  others(): ProviderSession[];
  quorum: number;
  /** The quorum height now (provider-pool.ts). */
  quorumHeight(): number;
  metrics: ChainMetrics;
  log: Logger;
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
    const votes = await this.votes(n, canonical);
    const forEmitted = votes.get(emitted) ?? 0;
    const forCanonical = (votes.get(canonical) ?? 0) + 1;
    if (forEmitted >= forCanonical) {
      throw new EthhookError('ETHHOOK_ERR_PROVIDER_DISAGREES', `provider ${this.deps.active.name} shows block ${n} as orphaned; ${forEmitted} other provider(s) still show it`, {
        provider: this.deps.active.name,
        block: n,
        hash: canonical,
        emitted,
      });
    }
    return forCanonical >= this.deps.quorum;
  }

  /** Hash → number of other providers showing it at height n; disagreements with `activeHash` counted. */
  private async votes(n: number, activeHash: string): Promise<Map<string, number>> {
    const others = this.deps.others();
    const answers = await Promise.all(others.map((p) => p.source.headerByNumber(n).then((h) => h?.hash ?? null, () => null)));
    const votes = new Map<string, number>();
    answers.forEach((hash, i) => {
      if (hash === null) return;
      votes.set(hash, (votes.get(hash) ?? 0) + 1);
      if (hash !== activeHash) {
        const provider = others[i]!.name;
        this.deps.metrics.providerDisagreements.inc({ chain: this.deps.chain, provider });
        this.deps.log.warn({ block: n, provider, hash, active: this.deps.active.name, activeHash }, 'chain providers disagree on a block hash');
      }
    });
    return votes;
  }

  /** Throws when another hash has the quorum (the active provider is the odd one); else the caller waits. */
  private outvoted(votes: Map<string, number>, activeHash: string, n: number): void {
    for (const [hash, count] of votes) {
      if (hash !== activeHash && count >= this.deps.quorum) {
        throw new EthhookError('ETHHOOK_ERR_PROVIDER_DISAGREES', `provider ${this.deps.active.name} shows block ${n} with a hash ${count} other provider(s) contradict`, {
          provider: this.deps.active.name,
          block: n,
          hash: activeHash,
          quorumHash: hash,
        });
      }
    }
  }
}
