// The cluster-limits scenarios (suites/deliverer-cluster-limits.ts) with each instance's Deliverer a
// DeliveryLoop in this process, on its own HTTP client. A file beside the forked one, so vitest runs
// the two side by side.
import { DeliveryLoop } from '../../src/actors/deliverer/delivery-loop.ts';
import { WebhookHttpClient } from '../../src/actors/deliverer/http-client.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { clusterLimitsSuite } from './suites/deliverer-cluster-limits.ts';

const logger = createLogger({ level: 'silent' });

clusterLimitsSuite({
  name: 'in process',
  async start({ outbox, endpoints, limits }, options) {
    const client = new WebhookHttpClient({ policy: { allowPrivate: true }, concurrency: 16, headersTimeoutMs: 2_000 });
    const loop = new DeliveryLoop({ outbox, endpoints, limits, client, logger }, options);
    loop.start();
    return {
      async wake() {
        loop.poke();
      },
      async openBreakers() {
        return loop.status().openBreakers;
      },
      async breaker(endpointId, action) {
        return loop.breaker(endpointId, action);
      },
      async stop() {
        await loop.stop();
        await client.close();
      },
    };
  },
});
