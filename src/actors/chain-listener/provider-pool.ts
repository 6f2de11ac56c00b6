/**
 * Which provider a chain reads from: a pure choice over what each provider's session shows, so that
 * tests can drive it without sockets.
 *
 * A provider is unusable while its session is down, while it reports `eth_syncing`, and once it served
 * another chain. The reference head is the highest head of the usable, unheld providers that another
 * such provider's head comes within `maxLagBlocks` of (two providers vouch for it); when none does
 * (one provider, or all far apart) it is simply the highest. A held provider's head does not count, nor
 * does a head no other provider comes near when others do: one provider claiming a far head cannot
 * make the honest ones look behind. A usable provider is healthy unless
 * - held: it failed a read, contradicted the others, or an operator moved the chain off it, less than
 *   the hold ago (`heldUntil`);
 * - lagging: its head is more than `maxLagBlocks` below the reference;
 * - ahead: its head is more than `maxLagBlocks` above the reference (a head nobody else has);
 * - stalled: it has been behind the reference for `stallTimeoutMs` (`behindSince`) without a new head
 *   for as long.
 *
 * `choose` picks the healthy provider of the highest weight (the first listed among equals), so a
 * preferred provider comes back as soon as it is healthy again. With no healthy provider it still
 * picks a usable one (unheld before held, held ones by the end of their hold, then by weight): a chain
 * with one provider keeps reading from it whatever happens, and the follower never emits what a
 * provider does not have. `quorumHeight` is the height at least `quorum` usable providers have reached.
 */
import type { FailoverReason } from './metrics.ts';

export interface ProviderView {
  name: string;
  /** Position in the configuration: the tie-break among equal weights. */
  index: number;
  weight: number;
  up: boolean;
  syncing: boolean;
  /** It served another chain: never used again by this listener. */
  mismatched: boolean;
  head: number | null;
  /** When its head number last went up (ms). */
  movedAt: number;
  /** Since when its head has been below the reference (ms), or null. */
  behindSince: number | null;
  heldUntil: number;
}

export interface PoolOptions {
  maxLagBlocks: number;
  stallTimeoutMs: number;
}

export type ProviderHealth = 'healthy' | 'down' | 'syncing' | 'mismatched' | 'held' | 'lagging' | 'ahead' | 'stalled';

export interface Assessment {
  view: ProviderView;
  health: ProviderHealth;
  /** The reference head minus its own (0 when above it or unknown). */
  lag: number;
}

const usable = (v: ProviderView): boolean => v.up && !v.syncing && !v.mismatched && v.head !== null;

/** The reference head (see the header); -1 when no usable, unheld provider has one. */
export function referenceHead(views: readonly ProviderView[], now: number, maxLagBlocks: number): number {
  const heads = views.filter((v) => usable(v) && v.heldUntil <= now).map((v) => v.head!);
  let top = -1;
  let vouched = -1;
  heads.forEach((h, i) => {
    top = Math.max(top, h);
    if (heads.some((o, j) => j !== i && Math.abs(o - h) <= maxLagBlocks)) vouched = Math.max(vouched, h);
  });
  return vouched >= 0 ? vouched : top;
}

export function assess(views: readonly ProviderView[], now: number, options: PoolOptions): Assessment[] {
  const reference = referenceHead(views, now, options.maxLagBlocks);
  return views.map((view): Assessment => {
    const lag = view.head === null || reference < 0 ? 0 : Math.max(0, reference - view.head);
    const stalled =
      lag > 0 &&
      view.behindSince !== null &&
      now - view.behindSince >= options.stallTimeoutMs &&
      now - view.movedAt >= options.stallTimeoutMs;
    let health: ProviderHealth;
    if (view.mismatched) health = 'mismatched';
    else if (!view.up || view.head === null) health = 'down';
    else if (view.syncing) health = 'syncing';
    else if (view.heldUntil > now) health = 'held';
    else if (lag > options.maxLagBlocks) health = 'lagging';
    else if (reference >= 0 && view.head - reference > options.maxLagBlocks) health = 'ahead';
    else if (stalled) health = 'stalled';
    else health = 'healthy';
    return { view, health, lag };
  });
}

/** The provider to read from, or null when none is usable. */
export function choose(assessed: readonly Assessment[]): Assessment | null {
  let best: Assessment | null = null;
  for (const a of assessed) {
    if (!usable(a.view)) continue;
    if (best === null || rank(a) < rank(best) || (rank(a) === rank(best) && better(a.view, best.view))) best = a;
  }
  return best;
}

/** 0 healthy, 1 lagging, ahead or stalled, 2 held. */
function rank(a: Assessment): number {
  return a.health === 'healthy' ? 0 : a.health === 'held' ? 2 : 1;
}

function better(a: ProviderView, b: ProviderView): boolean {
  if (a.heldUntil !== b.heldUntil) return a.heldUntil < b.heldUntil;
  return a.weight !== b.weight ? a.weight > b.weight : a.index < b.index;
}

/** Why the listener left `from` for `to`: what is wrong with it, or `weight` when nothing is. */
export function failoverReason(from: Assessment): FailoverReason {
  switch (from.health) {
    case 'down':
    case 'mismatched':
      return 'down';
    case 'syncing':
    case 'lagging':
    case 'ahead':
    case 'stalled':
      return from.health;
    case 'held':
      return 'error';
    case 'healthy':
      return 'weight';
  }
}

/** The highest block at least `quorum` usable providers have: the k-th highest head; -1 when fewer. */
export function quorumHeight(views: readonly ProviderView[], quorum: number): number {
  const heads = views
    .filter(usable)
    .map((v) => v.head!)
    .sort((a, b) => b - a);
  return heads.length >= quorum ? heads[quorum - 1]! : -1;
}
