/**
 * The demo's governance server: the reference server (src/governance-server/) run by main.ts as a plain
 * service next to the node, feeding it the demo's configuration as signed governance messages. The
 * demo endpoint and its subscription reach the stores the way a cluster's configuration would: through
 * the GovernanceStream actor, never by a direct store write.
 *
 * - `startDemoGovernance({ dataDir, logger })`: the signing key is `<dataDir>/demo-governance.key`
 *   (Ed25519, generated on first start with its `.pub`, mode 0600) and the message log
 *   `<dataDir>/demo-governance.jsonl`, so a restarted demo serves the same log under the same key (a
 *   node that applied seq n ignores a new seq n: the log must survive, docs/governance.md). The
 *   webhook secret of the demo endpoint is the one its last upsert in the log carried, else a new one.
 * - `feedDemo(server, desired)` appends what the log does not already say: the endpoint (its URL changes
 *   with the receiver's port on each start), the subscription to the dev contract's Tick events (its
 *   address and chain could change), and on the very first start a pause and a resume of the endpoint,
 *   so every kind of endpoint message is seen applied once. Resolves with the seqs it appended.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from '../governance-protocol/canonical.ts';
import { spkiBase64 } from '../governance-protocol/keys.ts';
import { TICK_TOPIC } from '../dev-chain/index.ts';
import { generateKeyFiles, loadSigningKey, startGovernanceServer, type GovernanceServer } from '../governance-server/index.ts';
import type { Logger } from '../runtime/log.ts';
import { generateWebhookSecret } from '../store/secrets.ts';

export const DEMO_ENDPOINT_ID = 'ep_demo';
export const DEMO_SUBSCRIPTION_ID = 'sub_demo_ticks';
export const DEMO_KEY_FILE = 'demo-governance.key';
export const DEMO_LOG_FILE = 'demo-governance.jsonl';

export interface DemoGovernance {
  server: GovernanceServer;
  /** base64 DER SPKI of the signing key: the node's `governance.publicKeys`. */
  publicKey: string;
  keyFile: string;
  /** The demo endpoint's webhook secret (the receiver verifies with it). */
  secret: string;
}

export async function startDemoGovernance(options: { dataDir: string; logger: Logger; serverLogger?: Logger }): Promise<DemoGovernance> {
  const { dataDir, logger } = options;
  await mkdir(dataDir, { recursive: true });
  const keyFile = join(dataDir, DEMO_KEY_FILE);
  if (!existsSync(keyFile)) {
    const made = await generateKeyFiles(keyFile);
    logger.info({ keyFile, keyId: made.keyId }, 'demo: governance signing key generated');
  }
  const { key } = await loadSigningKey(keyFile);
  const server = await startGovernanceServer({ keyFile, store: join(dataDir, DEMO_LOG_FILE), logger: options.serverLogger ?? logger });
  const secret = latestPayload<{ secret?: string }>(server, 'endpoint.upsert', DEMO_ENDPOINT_ID)?.secret ?? generateWebhookSecret();
  return { server, publicKey: spkiBase64(key), keyFile, secret };
}

export interface DemoDesired {
  receiverUrl: string;
  secret: string;
  chainId: number;
  contractAddress: string;
}

export async function feedDemo(server: GovernanceServer, desired: DemoDesired): Promise<number[]> {
  const firstStart = server.head === 0;
  const appended: number[] = [];
  const endpoint = {
    id: DEMO_ENDPOINT_ID,
    url: desired.receiverUrl,
    description: 'ethhook demo: the built-in receiver',
    secret: desired.secret,
  };
  const subscription = {
    id: DEMO_SUBSCRIPTION_ID,
    endpointId: DEMO_ENDPOINT_ID,
    chainId: desired.chainId,
    addresses: [desired.contractAddress.toLowerCase()],
    topics: [TICK_TOPIC],
  };
  if (!sameJson(latestPayload(server, 'endpoint.upsert', DEMO_ENDPOINT_ID), endpoint)) {
    appended.push(await server.append('endpoint.upsert', endpoint));
  }
  if (!sameJson(latestPayload(server, 'subscription.upsert', DEMO_SUBSCRIPTION_ID), subscription)) {
    appended.push(await server.append('subscription.upsert', subscription));
  }
  if (firstStart) {
    appended.push(await server.append('endpoint.pause', { id: DEMO_ENDPOINT_ID }));
    appended.push(await server.append('endpoint.resume', { id: DEMO_ENDPOINT_ID }));
  }
  return appended;
}

/** The payload of the last message of `type` about `id` in the server's log. */
function latestPayload<P = unknown>(server: GovernanceServer, type: string, id: string): P | undefined {
  const messages = server.messages();
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.type === type && (m.payload as { id?: unknown }).id === id) return m.payload as P;
  }
  return undefined;
}

/** Equal JSON values, whatever their key order (the log keeps payloads as the server parsed them). */
const sameJson = (a: unknown, b: unknown) => a !== undefined && canonicalJson(a) === canonicalJson(b);
