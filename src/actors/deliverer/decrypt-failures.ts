/**
 * Counts the endpoint secrets that do not open (`deliverer_secret_decrypt_failures_total`): an
 * EndpointPort whose `activeSecrets` counts each ETHHOOK_ERR_SECRET_DECRYPT it throws, and throws it on.
 * Wrapped where secrets are opened, in the node's process: around the store of an in-process Deliverer
 * (deliverer.ts) and in the `deliverer-store` actor that opens them for a placed one (store-port.ts).
 * A wrong master key is refused at start (EndpointStore.verifyMasterKey); this counts what is left,
 * records sealed under another key or tampered with.
 */
import { isEthhookError } from '../../runtime/errors.ts';
import type { DelivererMetrics } from './metrics.ts';
import type { EndpointPort } from './ports.ts';

export function countDecryptFailures(port: EndpointPort, metrics: DelivererMetrics): EndpointPort {
  return {
    get: (id) => port.get(id),
    activeSecrets: (endpoint, now) => {
      try {
        return port.activeSecrets(endpoint, now);
      } catch (err) {
        if (isEthhookError(err, 'ETHHOOK_ERR_SECRET_DECRYPT')) metrics.secretDecryptFailures.inc();
        throw err;
      }
    },
    disable: (id, reason, now) => port.disable(id, reason, now),
    setFailing: (id, failing) => port.setFailing(id, failing),
  };
}
