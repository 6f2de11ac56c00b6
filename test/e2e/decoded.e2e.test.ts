// Decoded events and filters end to end: one real node process following a real anvil with a token
// contract compiled by solc, delivering to a real receiver on loopback. Every body is checked against
// docs/webhook-body.schema.json with ajv; decoded args equal what ethers decodes from the same log on
// its own; a filter on `value` selects exactly the transfers it names; a log that does not decode under
// an abi arrives with `event: null` and is counted; a retraction carries the event of the log it retracts;
// bad abis and filters are 400s naming the field.
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { getAddress, Interface, type LogDescription, type ParamType } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devAccount, waitForReceipt } from '../../src/dev-chain/tick-contract.ts';
import { startAnvil, type TestAnvil } from '../support/anvil.ts';
import type { EndpointCreated, SubscriptionAnswer } from '../support/admin-answers.ts';
import { createNodeDir, killAllNodes, startNodeProcess, type NodeDir, type NodeProcess } from '../support/node-process.ts';
import { startReceiver, type Receiver, type ReceivedRequest } from '../support/receiver.ts';
import { compileToken, type CompiledToken } from '../support/token-contract.ts';
import { CHAIN_ID, expectedId, waitUntil, type RpcLog } from './e2e-chain.ts';

const TRANSFER = 'event Transfer(address indexed from, address indexed to, uint256 value)';
/** Transfer's topic0 with `value` indexed too (ERC-721's layout): the token's logs do not decode under it. */
const TRANSFER_721 = 'event Transfer(address indexed from, address indexed to, uint256 indexed tokenId)';
const VALUES = [5n, 999n, 1000n, 10n ** 18n, 2n ** 255n, 1n];
const THRESHOLD = 1000n;

interface Body {
  type: 'log.created' | 'log.removed';
  timestamp: string;
  data: {
    chainId: number;
    blockNumber: number;
    blockHash: string;
    logIndex: number;
    subscriptionId: string;
    topics: string[];
    data: string;
    event?: { name: string; signature: string; args: unknown } | null;
  };
}
const body = (r: ReceivedRequest) => r.json as Body;

/** A value ethers decoded, in the webhook's conventions (integers as decimal strings, tuples as objects by name), by its type. */
function plain(type: ParamType, value: unknown): unknown {
  if (type.isArray()) return (value as unknown[]).map((v) => plain(type.arrayChildren, v));
  if (type.isTuple()) {
    const parts = (value as unknown[]).map((v, i) => plain(type.components[i]!, v));
    return type.components.every((c) => c.name !== '') ? Object.fromEntries(type.components.map((c, i) => [c.name, parts[i]])) : parts;
  }
  return typeof value === 'bigint' ? value.toString() : value;
}
const plainArgs = (log: LogDescription) => Object.fromEntries(log.fragment.inputs.map((p, i) => [p.name, plain(p, log.args[i])]));

let anvil: TestAnvil;
let dir: NodeDir;
let node: NodeProcess;
let receiver: Receiver;
let token: CompiledToken;
let iface: Interface;
let from: string;
let address: string;
const secrets = new Map<string, string>();

const rpc = (method: string, params: unknown[]) => anvil.rpc(method, params);
async function send(data: string): Promise<void> {
  await waitForReceipt(rpc, (await rpc('eth_sendTransaction', [{ from, to: address, data }])) as string);
}

beforeAll(async () => {
  token = compileToken();
  iface = new Interface(token.abi);
  anvil = await startAnvil({ chainId: CHAIN_ID });
  from = await devAccount(rpc);
  const receipt = await waitForReceipt(rpc, (await rpc('eth_sendTransaction', [{ from, data: token.bytecode }])) as string);
  address = receipt.contractAddress!.toLowerCase();
  receiver = await startReceiver({ secrets: (path) => [secrets.get(path)].filter((s) => s !== undefined) });
  dir = await createNodeDir();
  node = await startNodeProcess({
    dir,
    config: {
      store: { kind: 'level' },
      chains: [{ chainId: CHAIN_ID, name: 'anvil', wsUrl: anvil.wsUrl, httpUrl: anvil.httpUrl, startBlock: 0, confirmations: 0 }],
      security: { allowPrivateTargets: true },
    },
  });
});

afterAll(async () => {
  await killAllNodes();
  await receiver?.close();
  await anvil?.stop();
  await dir?.remove();
});

async function subscribe(endpointId: string, fields: Record<string, unknown>): Promise<string> {
  const res = await node.api<SubscriptionAnswer>('POST', '/v1/subscriptions', {
    chainId: CHAIN_ID,
    endpointId,
    addresses: [address],
    ...fields,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.subscription.id;
}

describe('decoded events and filters (level)', () => {
  it('refuses a bad abi, events entry or filter with 400 naming the field', async () => {
    const ep = await node.api<EndpointCreated>('POST', '/v1/endpoints', { url: `${receiver.url}/refused` });
    const endpointId = ep.body.endpoint.id;
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ abi: [TRANSFER, 'event X(uint257 a)'] }, 'abi[1]', /uint257/],
      [{ abi: [TRANSFER], events: ['Mint'] }, 'events[0]', /no event named Mint/],
      [{ abi: [TRANSFER], filter: { or: [{ 'args.value': { gte: 'lots' } }] } }, 'filter.or[0]["args.value"].gte', /must be an integer/],
      [{ filter: { 'args.value': { gte: '1' } } }, 'filter["args.value"]', /need an abi/],
    ];
    for (const [fields, field, message] of cases) {
      const res = await node.api<{ error: { code: string; message: string; field: string } }>('POST', '/v1/subscriptions', {
        chainId: CHAIN_ID,
        endpointId,
        ...fields,
      });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error.field).toBe(field);
      expect(res.body.error.message).toMatch(message);
    }
  });

  it('delivers decoded events equal to ethers decoding, filters on value exactly, sends event null for a log that does not decode, and retracts with the same event', async () => {
    const ep = await node.api<EndpointCreated>('POST', '/v1/endpoints', { url: `${receiver.url}/hooks` });
    expect(ep.status).toBe(201);
    secrets.set('/hooks', ep.body.secret);
    const endpointId = ep.body.endpoint.id;
    // The solc JSON ABI as it comes, functions and constructor included.
    const all = await subscribe(endpointId, { abi: token.abi });
    const big = await subscribe(endpointId, { abi: [TRANSFER], filter: { 'args.value': { gte: THRESHOLD.toString() } } });
    const raw = await subscribe(endpointId, {});
    const undecodable = await subscribe(endpointId, { abi: [TRANSFER_721] });
    const stored = await node.api<SubscriptionAnswer>('GET', `/v1/subscriptions/${big}`);
    expect(stored.body.subscription).toMatchObject({ abi: [TRANSFER], topics: [iface.getEvent('Transfer')!.topicHash] });

    const wallets = ['0x' + 'a1'.repeat(20), '0x' + 'B2'.repeat(20), '0x' + 'c3'.repeat(20)];
    for (const [i, v] of VALUES.entries()) await send(iface.encodeFunctionData('transfer', [wallets[i % 3]!, v]));
    const order = (n: number) => ({
      maker: wallets[n]!,
      amount: 10n ** 20n + BigInt(n),
      tag: '0x' + String(n).repeat(64),
      fee: { bps: 30 + n, to: wallets[2 - n]! },
    });
    await send(iface.encodeFunctionData('place', [7n, order(0), [1n, 2n ** 200n, 3n], 'first order', '0xdeadbeef']));
    await send(iface.encodeFunctionData('place', [8n, order(1), [], '', '0x']));

    const logs = await anvil.rpc<RpcLog[]>('eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest', address }]);
    expect(logs).toHaveLength(VALUES.length + 2);
    const transfers = logs.filter((l) => l.topics[0] === iface.getEvent('Transfer')!.topicHash);
    const bigOnes = transfers.filter((l) => BigInt(l.data) >= THRESHOLD);
    expect(bigOnes).toHaveLength(VALUES.filter((v) => v >= THRESHOLD).length);
    const expectedCount = logs.length * 2 + bigOnes.length + transfers.length;
    await waitUntil(
      () => receiver.deliveredIds().size >= expectedCount,
      60_000,
      () => `${expectedCount} deliveries (${receiver.deliveredIds().size} so far)`,
    );

    const schema = JSON.parse(readFileSync(new URL('../../docs/webhook-body.schema.json', import.meta.url), 'utf8')) as object;
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d\d-\d\dT/.test(s));
    const validate = ajv.compile(schema);
    const hooks = receiver.requests.filter((r) => r.path === '/hooks');
    for (const r of hooks) {
      expect(validate(r.json), JSON.stringify(validate.errors)).toBe(true);
      expect(r.verified).toBe(true);
      expect(r.webhookId).toBe(expectedId(body(r).data as never, body(r).type));
    }
    const created = (sub: string) => hooks.filter((r) => body(r).type === 'log.created' && body(r).data.subscriptionId === sub).map(body);
    const logOf = (b: Body) => logs.find((l) => l.blockHash === b.data.blockHash && Number.parseInt(l.logIndex, 16) === b.data.logIndex)!;

    // Every log, decoded as ethers decodes it on its own.
    expect(created(all)).toHaveLength(logs.length);
    for (const b of created(all)) {
      const parsed = iface.parseLog({ topics: logOf(b).topics, data: logOf(b).data })!;
      expect(b.data.event).toEqual({ name: parsed.name, signature: parsed.signature, args: plainArgs(parsed) });
    }
    const placed = created(all).find((b) => b.data.event?.name === 'Placed')!;
    expect(placed.data.event!.args).toEqual({
      id: '7',
      order: {
        maker: getAddress(wallets[0]!),
        amount: '100000000000000000000',
        tag: '0x' + '0'.repeat(64),
        fee: { bps: '30', to: getAddress(wallets[2]!) },
      },
      ids: ['1', (2n ** 200n).toString(), '3'],
      note: 'first order',
      extra: '0xdeadbeef',
    });

    // The filter: exactly the transfers of value >= 1000.
    expect(
      created(big)
        .map((b) => `${b.data.blockHash}:${b.data.logIndex}`)
        .sort(),
    ).toEqual(bigOnes.map((l) => `${l.blockHash}:${Number.parseInt(l.logIndex, 16)}`).sort());
    // Without an abi: no event field at all.
    expect(created(raw)).toHaveLength(logs.length);
    for (const b of created(raw)) expect('event' in b.data).toBe(false);
    // Under an abi the logs do not fit: delivered with event null, and counted.
    expect(created(undecodable)).toHaveLength(transfers.length);
    for (const b of created(undecodable)) expect(b.data.event).toBeNull();
    expect(await node.metric('matcher_decode_failures_total')).toBe(transfers.length);

    // A reorg orphans the last block (the second Placed): its log.removed carries the event it was sent with.
    const last = logs.at(-1)!;
    await anvil.rpc('anvil_reorg', [1, []]);
    const removedOf = (sub: string) =>
      receiver.requests.filter((r) => r.path === '/hooks' && body(r).type === 'log.removed' && body(r).data.subscriptionId === sub);
    await waitUntil(() => removedOf(all).length >= 1 && removedOf(raw).length >= 1, 30_000, 'the log.removed of the orphaned block');
    const removed = body(removedOf(all)[0]!);
    expect(removed.data.blockHash).toBe(last.blockHash);
    const createdEvent = created(all).find((b) => b.data.blockHash === last.blockHash)!.data.event;
    expect(createdEvent?.name).toBe('Placed');
    expect(removed.data.event).toEqual(createdEvent);
    expect(validate(removedOf(all)[0]!.json), JSON.stringify(validate.errors)).toBe(true);
    expect('event' in body(removedOf(raw)[0]!).data).toBe(false);
  });
});
