/**
 * The checks `ethhook start` makes before it opens anything, which `ethhook config check` makes too:
 * those the configuration and the environment decide alone.
 *
 * - `ETHHOOK_MASTER_KEY`: when set, 32 bytes of hex or base64 (ETHHOOK_ERR_MASTER_KEY_INVALID); unset
 *   while `security.generateMasterKey` is false, ETHHOOK_ERR_MASTER_KEY_MISSING (store/secrets.ts).
 *
 * What needs the node's surroundings only a start finds out, and START_CHECK_LIMITS says so to the
 * operator: the data directory (another process holding its store, ETHHOOK_ERR_STORE_LOCKED; a
 * `master.key` or `admin-token` file there that holds no key or token), the admin port
 * (ETHHOOK_ERR_ADMIN_LISTEN), an actor placement the tree refuses (ETHHOOK_ERR_INVALID_SPEC), and the
 * chains and governance server, which a start does not wait for: `/ready` says when they are reached.
 */
import type { NodeConfig } from './config/schema.ts';
import { EthhookError } from './runtime/errors.ts';
import { masterKeyFromEnv } from './store/secrets.ts';

export const START_CHECK_LIMITS =
  "It cannot check what needs the node's surroundings: the data directory (a store another process holds, " +
  'its master.key and admin-token files), the admin port being free, actor placements, and whether the ' +
  'chains and the governance server can be reached (/ready says so once the node runs).';

/** Every start check that fails for `config` in `env`, in the order above; empty when a start may proceed. */
export function startProblems(config: NodeConfig, env: Readonly<Record<string, string | undefined>>): EthhookError[] {
  const problems: EthhookError[] = [];
  const check = (run: () => unknown) => {
    try {
      run();
    } catch (err) {
      if (!(err instanceof EthhookError)) throw err;
      problems.push(err);
    }
  };
  check(() => masterKeyFromEnv(env, config.security.generateMasterKey));
  return problems;
}
