/**
 * The Deliverer's settings from the node's configuration: the `deliverer` section and the target policy
 * of `security`. The section's keys are the options' own names, so this only sorts them by the part
 * they configure: the HTTP client (`requestTimeoutMs`, `policy.allowPrivate` from
 * `security.allowPrivateTargets`), the loop and its scheduler (`concurrency`, `perEndpointConcurrency`,
 * `slowConcurrency`, `slowAfterMs`, `retry`), the loop's guards (`circuitBreaker`, `disable`). The result
 * is JSON: a placed Deliverer gets it as its factory's args (placed.ts), an in-process one as its deps.
 */
import type { NodeConfig } from '../../config/schema.ts';

export function delivererSettings(config: Pick<NodeConfig, 'deliverer' | 'security'>) {
  const { requestTimeoutMs, retry, circuitBreaker, disable, ...lanes } = config.deliverer;
  return {
    http: { policy: { allowPrivate: config.security.allowPrivateTargets }, requestTimeoutMs },
    loop: { ...lanes, retry, guards: { circuitBreaker, disable } },
  };
}
