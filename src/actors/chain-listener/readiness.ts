/**
 * ChainReadiness: which configured chains the node has not reached yet, for `/ready`. Every chain is
 * waited for from the start of the process; a chain is ready once its listener had a session with the
 * node, verified the chain and pinned its start block (listener.ts). Until then `/ready` answers 503
 * with a reason per chain, so a node with a wrong RPC URL is not ready, and a client that waited for
 * `/ready` cannot send a transaction into a block before the listener's start. A chain stays ready
 * after a later disconnect (the chain alerts watch that: EthhookChainDown).
 */
export class ChainReadiness {
  private readonly waiting = new Map<number, string>();

  constructor(chains: ReadonlyArray<{ chainId: number; name: string }>) {
    for (const { chainId, name } of chains) this.waiting.set(chainId, `chain ${name} (${chainId}) has not reached its node yet`);
  }

  ready(chainId: number): void {
    this.waiting.delete(chainId);
  }

  /** One line per chain not reached yet; empty when all are. */
  reasons(): string[] {
    return [...this.waiting.values()];
  }
}
