/**
 * The parts of undici the node uses, loaded from their own files rather than from the package's index.
 * The index loads everything undici has (fetch, WebSocket, EventSource, the cache, mocks, interceptors,
 * HTTP/2), and the node would keep it for its whole life. Measured on node 20: loading the index adds
 * 10.9 MB of anonymous and 8.7 MB of file-backed RSS to a bare process, these files 4.9 and 6.5 MB; an
 * idle node (LevelDB, one chain, no subscription) went from 77.5-82.8 MB of RSS to 72.9-76.2 MB.
 * A lint rule (eslint.config.mjs) keeps `import … from 'undici'` out of src/, types excepted.
 *
 * - `Agent`: the Deliverer's pool of keep-alive connections (src/actors/deliverer/http-client.ts);
 * - `buildConnector`: the socket connector the SSRF policy wraps (src/target-policy/ssrf.ts);
 * - `requestOn(dispatcher, options)`: undici's `request` API on a given dispatcher (the JSON-RPC HTTP
 *   transport, src/actors/chain-listener/http-rpc.ts).
 *
 * The files are undici's own (`lib/…`, stable across its major versions 5 to 7; the package has no
 * `exports` map, so they are importable). Their types are those of the index's same exports
 * (src/undici-lib.d.ts). The index would also give every dispatcher the `request`
 * method (`Object.assign(Dispatcher.prototype, api)`); here `requestOn` calls the function instead.
 */
import type { Dispatcher } from 'undici';
import Agent from 'undici/lib/dispatcher/agent.js';
import buildConnector from 'undici/lib/core/connect.js';
import apiRequest from 'undici/lib/api/api-request.js';

export { Agent, buildConnector };

/** undici's `request(options)` on `dispatcher`; `options.origin` and `options.path` name the target. */
export function requestOn(dispatcher: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
  return apiRequest.call(dispatcher, options);
}
