/**
 * The GovernanceStream's persisted state: one record `state` in the `governance` space (src/store/kv.ts),
 * `{ height, keys: [{ keyId, publicKey }], genesis: keyId[] }`. One record, so the height and the
 * trusted key set always change together (a key rotation moves both in one write).
 *
 * - `height`: the last applied sequence number (0: nothing applied yet).
 * - `keys`: the keys whose signatures are accepted now (the configured ones, changed by rotations).
 * - `genesis`: the fingerprints of the configured keys the set was seeded from. When the configuration
 *   names other keys than the recorded genesis, the operator has re-keyed the node on purpose (the way
 *   out of a compromised or lost key): the trusted set is reset to the configured keys, the height kept.
 */
import { z } from 'zod';
import type { Kv, KvSpace } from '../../store/kv.ts';
import type { TrustedKey } from '../../governance-protocol/keys.ts';

const stateSchema = z.object({
  height: z.number().int().min(0),
  keys: z.array(z.object({ keyId: z.string(), publicKey: z.string() })).min(1),
  genesis: z.array(z.string()),
});
export type GovernanceState = z.infer<typeof stateSchema>;

const STATE_KEY = 'state';

const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

export class GovernanceStateStore {
  private readonly records: KvSpace<GovernanceState>;

  constructor(kv: Kv) {
    this.records = kv.space('governance');
  }

  /** Loads the state, seeding or re-seeding it from the configured keys; `reseeded` says it happened. */
  async load(configured: TrustedKey[]): Promise<{ state: GovernanceState; reseeded: boolean }> {
    const genesis = configured.map((k) => k.keyId);
    const stored = await this.records.get(STATE_KEY);
    if (stored === undefined) {
      const state = { height: 0, keys: configured, genesis };
      await this.commit(state);
      return { state, reseeded: false };
    }
    const state = stateSchema.parse(stored);
    if (sameSet(state.genesis, genesis)) return { state, reseeded: false };
    const reseeded = { height: state.height, keys: configured, genesis };
    await this.commit(reseeded);
    return { state: reseeded, reseeded: true };
  }

  /** The recorded height (0: nothing recorded). */
  async height(): Promise<number> {
    const stored = await this.records.get(STATE_KEY);
    return stored === undefined ? 0 : stateSchema.parse(stored).height;
  }

  commit(state: GovernanceState): Promise<void> {
    return this.records.put(STATE_KEY, state);
  }
}
