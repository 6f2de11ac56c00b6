/**
 * Endpoints: where webhooks go. Stored in the `endpoints` space (src/store/kv.ts), keyed by id (`ep_...`, sorted by
 * creation time).
 *
 * Record: `{ id, url, description, rateLimitPerSec?, disabled: null | { reason, at }, paused, createdAt,
 * secrets: [{ id, encrypted, createdAt, expiresAt? }] }` (times in ms since the epoch).
 * - `create` generates a `whsec_` secret and returns it in plaintext exactly once; at rest secrets are
 *   sealed under the master key (see secrets.ts). A governance message may supply the id and the secret
 *   so that every instance of a cluster signs with the same one.
 * - `rotateSecret(id, overlapMs = 24 h)` adds a new secret and gives every still-valid older secret an
 *   `expiresAt` of now + overlap (never later than it already had); fully expired secrets are dropped.
 * - `activeSecrets(endpoint, now)` is what signs a delivery now: the plaintext secrets created at or
 *   before `now` and not yet expired, newest first (Standard Webhooks sends one signature per secret).
 * - `failing: { since, failures }` is the Deliverer's failure streak, kept so that a restart does not
 *   start it over (deliverer/disable.ts); `enable` clears it.
 * - `disabled` is set by the Deliverer (410, sustained failure) with its reason; `paused` by an operator
 *   or a governance message. Neither stops the Matcher: jobs wait in the outbox and the Deliverer
 *   decides what to do with them.
 * - `verifyMasterKey()` (at start) refuses a master key that opens none of the stored secrets.
 * - Read-modify-write operations are serialized inside this store, so a rotation and a disable racing
 *   on the same endpoint do not lose either write.
 */
import { z } from 'zod';
import { EthhookError } from '../runtime/errors.ts';
import type { Kv, KvSpace } from './kv.ts';
import { newId } from './ids.ts';
import { generateWebhookSecret, isWebhookSecret, SecretCipher } from './secrets.ts';
import { Serial } from '../runtime/serial.ts';
import { parseInput } from './validate.ts';

export const DEFAULT_ROTATION_OVERLAP_MS = 24 * 60 * 60 * 1000;

export const endpointIdSchema = z.string().regex(/^ep_[A-Za-z0-9_-]{1,64}$/, 'must be "ep_" followed by 1 to 64 of [A-Za-z0-9_-]');

const webhookUrlSchema = z
  .string()
  .max(2048)
  .refine((s) => URL.canParse(s), 'must be an absolute URL')
  .refine((s) => !URL.canParse(s) || ['http:', 'https:'].includes(new URL(s).protocol), 'must be http or https')
  .refine((s) => !URL.canParse(s) || (new URL(s).username === '' && new URL(s).password === ''), 'must not carry credentials');

/** Webhooks per second: at least one per 100 s (a slower "limit" is a pause: pause the endpoint instead). */
export const MIN_RATE_LIMIT_PER_SEC = 0.01;
const rateLimitSchema = z
  .number()
  .min(MIN_RATE_LIMIT_PER_SEC, `must be at least ${MIN_RATE_LIMIT_PER_SEC} (one webhook per 100 s); to stop deliveries, pause the endpoint`)
  .max(1_000_000);

export const secretRecordSchema = z.object({
  id: z.string().min(1),
  encrypted: z.string().min(1),
  createdAt: z.number().int(),
  expiresAt: z.number().int().optional(),
});
export type SecretRecord = z.infer<typeof secretRecordSchema>;

export const endpointSchema = z.object({
  id: endpointIdSchema,
  url: webhookUrlSchema,
  description: z.string().max(1024),
  rateLimitPerSec: rateLimitSchema.optional(),
  disabled: z.object({ reason: z.string(), at: z.number().int() }).nullable(),
  /** The Deliverer's failure streak (see deliverer/disable.ts); absent or null when the last attempt succeeded. */
  failing: z
    .object({ since: z.number().int(), failures: z.number().int().min(1) })
    .nullable()
    .optional(),
  paused: z.boolean(),
  createdAt: z.number().int(),
  secrets: z.array(secretRecordSchema).min(1),
});
export type Endpoint = z.infer<typeof endpointSchema>;

export const endpointCreateSchema = z.strictObject({
  url: webhookUrlSchema,
  description: z.string().max(1024).default(''),
  rateLimitPerSec: rateLimitSchema.optional(),
  id: endpointIdSchema.optional(),
  secret: z.string().refine(isWebhookSecret, 'must be "whsec_" followed by base64 of 24 to 64 bytes').optional(),
});
export type EndpointCreateInput = z.input<typeof endpointCreateSchema>;

export const endpointUpdateSchema = z.strictObject({
  url: webhookUrlSchema.optional(),
  description: z.string().max(1024).optional(),
  rateLimitPerSec: rateLimitSchema.nullable().optional(),
});
export type EndpointUpdateInput = z.input<typeof endpointUpdateSchema>;

/** An endpoint as the admin API shows it: secrets by id and dates only. */
export interface EndpointView extends Omit<Endpoint, 'secrets'> {
  secrets: Array<Omit<SecretRecord, 'encrypted'>>;
}

export function endpointView(endpoint: Endpoint): EndpointView {
  return { ...endpoint, secrets: endpoint.secrets.map(({ encrypted: _sealed, ...rest }) => rest) };
}

/** The key of the store's master-key check, and the constant it seals. */
const KEY_CHECK = 'check';

export class EndpointStore {
  private readonly records: KvSpace<Endpoint>;
  private readonly cipher: SecretCipher;
  private readonly writes = new Serial();

  private readonly keyCheck: KvSpace<string>;

  constructor(kv: Kv, masterKey: Buffer) {
    this.records = kv.space('endpoints');
    this.keyCheck = kv.space('master-key');
    this.cipher = new SecretCipher(masterKey);
  }

  /** Creates an endpoint; `secret` is the plaintext signing secret, returned this once. */
  async create(input: EndpointCreateInput, now = Date.now()): Promise<{ endpoint: Endpoint; secret: string }> {
    const parsed = parseInput(endpointCreateSchema, input, 'endpoint');
    return this.writes.run(async () => {
      const id = parsed.id ?? newId('ep_', now);
      if ((await this.records.get(id)) !== undefined) {
        throw new EthhookError('ETHHOOK_ERR_ENDPOINT_EXISTS', `endpoint ${id} already exists`, { endpointId: id });
      }
      const secret = parsed.secret ?? generateWebhookSecret();
      const endpoint: Endpoint = {
        id,
        url: parsed.url,
        description: parsed.description,
        ...(parsed.rateLimitPerSec !== undefined ? { rateLimitPerSec: parsed.rateLimitPerSec } : {}),
        disabled: null,
        paused: false,
        createdAt: now,
        secrets: [this.sealSecret(id, secret, now)],
      };
      await this.records.put(id, endpoint);
      return { endpoint, secret };
    });
  }

  async get(id: string): Promise<Endpoint | undefined> {
    const raw = await this.records.get(id);
    return raw === undefined ? undefined : endpointSchema.parse(raw);
  }

  async require(id: string): Promise<Endpoint> {
    const endpoint = await this.get(id);
    if (!endpoint) throw new EthhookError('ETHHOOK_ERR_ENDPOINT_NOT_FOUND', `no endpoint ${id}`, { endpointId: id });
    return endpoint;
  }

  /** Endpoints in creation order; page with `after` = the last id of the previous page. */
  async list(options: { limit?: number; after?: string } = {}): Promise<Endpoint[]> {
    const out: Endpoint[] = [];
    const range = options.after === undefined ? {} : { gt: options.after };
    for await (const [, value] of this.records.scan({ ...range, limit: options.limit })) out.push(endpointSchema.parse(value));
    return out;
  }

  async update(id: string, patch: EndpointUpdateInput): Promise<Endpoint> {
    const parsed = parseInput(endpointUpdateSchema, patch, 'endpoint update');
    return this.modify(id, (e) => {
      const { rateLimitPerSec: _old, ...rest } = e;
      const rate = parsed.rateLimitPerSec === undefined ? e.rateLimitPerSec : (parsed.rateLimitPerSec ?? undefined);
      return {
        ...rest,
        url: parsed.url ?? e.url,
        description: parsed.description ?? e.description,
        ...(rate !== undefined ? { rateLimitPerSec: rate } : {}),
      };
    });
  }

  /** Deletes the endpoint record. Use `removeEndpointCascade` (subscriptions.ts) to drop its subscriptions too. */
  remove(id: string): Promise<boolean> {
    return this.writes.run(async () => {
      if ((await this.records.get(id)) === undefined) return false;
      await this.records.del(id);
      return true;
    });
  }

  async rotateSecret(
    id: string,
    overlapMs = DEFAULT_ROTATION_OVERLAP_MS,
    options: { now?: number; secret?: string } = {},
  ): Promise<{ endpoint: Endpoint; secret: string }> {
    const now = options.now ?? Date.now();
    if (!Number.isFinite(overlapMs) || overlapMs < 0) {
      throw new EthhookError('ETHHOOK_ERR_INVALID_INPUT', 'overlapMs must be a non-negative number', {
        what: 'rotation',
        issues: [{ path: 'overlapMs', message: 'must be >= 0' }],
      });
    }
    if (options.secret !== undefined && !isWebhookSecret(options.secret)) {
      throw new EthhookError('ETHHOOK_ERR_INVALID_INPUT', 'secret must be "whsec_" followed by base64 of 24 to 64 bytes', {
        what: 'rotation',
        issues: [{ path: 'secret', message: 'invalid webhook secret' }],
      });
    }
    const secret = options.secret ?? generateWebhookSecret();
    const expiresAt = now + overlapMs;
    return this.modify(id, (e) => ({
      ...e,
      secrets: [
        this.sealSecret(id, secret, now),
        ...e.secrets
          .filter((s) => s.expiresAt === undefined || s.expiresAt > now)
          .map((s) => ({ ...s, expiresAt: Math.min(s.expiresAt ?? expiresAt, expiresAt) })),
      ],
    })).then((endpoint) => ({ endpoint, secret }));
  }

  /**
   * Checks the master key against the store, at start: the store's key check (a constant sealed under
   * the key the store was first started with, space `master-key`) must open, and the newest secret of
   * each of the first `sample` endpoints too. A check that does not open, or none of the secrets
   * opening, is a wrong key (ETHHOOK_ERR_MASTER_KEY_MISMATCH, naming the endpoints tried); some opening
   * means single records were tampered with, returned for the log. A store without a key check gets
   * one once its secrets passed, read back after the write: of instances of a cluster started at once
   * on an empty store with different keys, all but the last writer refuse.
   */
  async verifyMasterKey(sample = 8): Promise<{ checked: number; unreadable: string[] }> {
    const recorded = await this.keyCheck.get(KEY_CHECK);
    if (recorded !== undefined) this.openKeyCheck(recorded);
    const unreadable: string[] = [];
    const endpoints = await this.list({ limit: sample });
    for (const e of endpoints) {
      const newest = e.secrets.reduce((a, b) => (b.createdAt > a.createdAt ? b : a));
      try {
        this.cipher.open(newest.encrypted, secretIdentity(e.id, newest.id));
      } catch {
        unreadable.push(e.id);
      }
    }
    if (endpoints.length > 0 && unreadable.length === endpoints.length) {
      throw new EthhookError(
        'ETHHOOK_ERR_MASTER_KEY_MISMATCH',
        `the master key does not open the stored webhook secrets (${unreadable.length} of ${unreadable.length} endpoints tried: ${unreadable.join(', ')}); start with the ETHHOOK_MASTER_KEY (or master.key) this store was written with`,
        { endpointIds: unreadable },
      );
    }
    if (recorded === undefined) {
      await this.keyCheck.put(KEY_CHECK, this.cipher.seal(KEY_CHECK, KEY_CHECK));
      this.openKeyCheck((await this.keyCheck.get(KEY_CHECK)) ?? '');
    }
    return { checked: endpoints.length, unreadable };
  }

  /** Throws ETHHOOK_ERR_MASTER_KEY_MISMATCH unless `sealed` (the store's key check) opens under this key. */
  private openKeyCheck(sealed: string): void {
    try {
      this.cipher.open(sealed, KEY_CHECK);
    } catch {
      throw new EthhookError(
        'ETHHOOK_ERR_MASTER_KEY_MISMATCH',
        'the master key is not the one this store was first written with (its key check does not open); start with the ETHHOOK_MASTER_KEY (or master.key) of the store, the same on every instance of a cluster',
        { endpointIds: [] },
      );
    }
  }

  /** Plaintext secrets that sign at `now`, newest first. Throws ETHHOOK_ERR_SECRET_DECRYPT under a wrong key. */
  activeSecrets(endpoint: Endpoint, now = Date.now()): string[] {
    return endpoint.secrets
      .filter((s) => s.createdAt <= now && (s.expiresAt === undefined || s.expiresAt > now))
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((s) => this.cipher.open(s.encrypted, secretIdentity(endpoint.id, s.id)));
  }

  disable(id: string, reason: string, now = Date.now()): Promise<Endpoint> {
    return this.modify(id, (e) => ({ ...e, disabled: { reason, at: now } }));
  }

  /** Enabled again by an operator: a fresh start, so the failure streak goes too. */
  enable(id: string): Promise<Endpoint> {
    return this.modify(id, (e) => ({ ...e, disabled: null, failing: null }));
  }

  /** Stores the Deliverer's failure streak (null: ended by a success). */
  setFailing(id: string, failing: { since: number; failures: number } | null): Promise<Endpoint> {
    return this.modify(id, (e) => ({ ...e, failing }));
  }

  setPaused(id: string, paused: boolean): Promise<Endpoint> {
    return this.modify(id, (e) => ({ ...e, paused }));
  }

  private sealSecret(endpointId: string, secret: string, now: number): SecretRecord {
    const id = newId('sec_', now);
    return { id, encrypted: this.cipher.seal(secret, secretIdentity(endpointId, id)), createdAt: now };
  }

  private modify(id: string, change: (e: Endpoint) => Endpoint): Promise<Endpoint> {
    return this.writes.run(async () => {
      const next = endpointSchema.parse(change(await this.require(id)));
      await this.records.put(id, next);
      return next;
    });
  }
}

function secretIdentity(endpointId: string, secretId: string): string {
  return `endpoint:${endpointId}/secret:${secretId}`;
}
