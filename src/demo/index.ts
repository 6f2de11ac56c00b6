/**
 * The demo a newcomer sees on `npm start` (config `demo`, on by default, only with the embedded dev
 * chain): the node delivers the dev contract's Tick events as signed webhooks to a receiver of its own
 * and shows them verified.
 *
 *   startDemo({ dataDir, chain, logger })
 *     1. the governance server (governance.ts) with its key and log under dataDir;
 *     2. the receiver (receiver.ts) on 127.0.0.1, verifying with the demo endpoint's secret;
 *     3. the governance log is fed the demo endpoint (the receiver's URL, the secret) and its
 *        subscription (chain id, contract address, Tick topic): the node applies them through its
 *        GovernanceStream actor, as it would a cluster's configuration.
 *   → { governance: { url, publicKeys } to follow, receiver, governanceServer, stop() }
 *
 * The receiver and the governance server stand for things outside the node (a customer's server, a
 * cluster's control plane), so they are plain services main.ts starts before the tree and stops after
 * it, not actors under its supervision.
 */
import type { Logger } from '../runtime/log.ts';
import { feedDemo, startDemoGovernance, type DemoGovernance } from './governance.ts';
import { startDemoReceiver, type DemoReceiver } from './receiver.ts';

export { DEMO_ENDPOINT_ID, DEMO_SUBSCRIPTION_ID, DEMO_KEY_FILE, DEMO_LOG_FILE } from './governance.ts';
export { readStatus, startStatusLine, type NodeStatus, type StatusLineOptions } from './status.ts';
export { verifySignature, type VerifyInput, type VerifyResult } from './verify.ts';
export type { DemoReceiver, DemoReceiverStats } from './receiver.ts';

export interface DemoOptions {
  dataDir: string;
  /** The dev chain the demo subscribes to. */
  chain: { chainId: number; contractAddress: string };
  logger: Logger;
}

export interface Demo {
  /** What the node's GovernanceStream follows. */
  governance: { url: string; publicKeys: string[] };
  receiver: DemoReceiver;
  governanceServer: DemoGovernance['server'];
  /** Seqs appended to the governance log by this start. */
  fed: number[];
  stop(): Promise<void>;
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const logger = options.logger.child({ component: 'demo' });
  const gov = await startDemoGovernance({
    dataDir: options.dataDir,
    logger,
    serverLogger: options.logger.child({ component: 'demo-governance-server' }),
  });
  let receiver: DemoReceiver | undefined;
  try {
    receiver = await startDemoReceiver({ secrets: [gov.secret], logger: options.logger.child({ component: 'demo-receiver' }) });
    const fed = await feedDemo(gov.server, { receiverUrl: receiver.url, secret: gov.secret, ...options.chain });
    logger.info({ governance: gov.server.url, keyId: gov.server.keyId, head: gov.server.head, fed }, 'demo: governance log ready');
    const running = receiver;
    return {
      governance: { url: gov.server.url, publicKeys: [gov.publicKey] },
      receiver: running,
      governanceServer: gov.server,
      fed,
      stop: async () => {
        await Promise.all([running.close(), gov.server.close()]);
        logger.info('demo: receiver and governance server stopped');
      },
    };
  } catch (err) {
    await receiver?.close();
    await gov.server.close();
    throw err;
  }
}
