/**
 * The endpoints the delivery loop sends to, each read once per `ttlMs` (default 1 s): secret rotations
 * and edits apply within that time, and `delete` (the Deliverer was told of a change) applies them at
 * once.
 *
 * An entry holds the endpoint (undefined: it no longer exists), its URL object (the HTTP client keeps
 * its origin and path per URL object) and its live secrets prepared for signing, newest first.
 * `fresh(id, now)` is the fast path, synchronous: the entry while it is fresh, else undefined, and then
 * `load(id, now)` reads the store — one read per endpoint at a time, shared by every job that waits for
 * it. `onLoad` sees every endpoint read (the loop resumes a stored failure streak from it).
 *
 * Bounds: one entry per endpoint that has had a job; loads in progress at most
 * one per endpoint.
 */
import type { Endpoint } from '../../store/endpoints.ts';
import type { EndpointPort } from './ports.ts';
import { signingKey, type SigningKey } from '../../webhook-signing.ts';

export interface EndpointEntry {
  endpoint: Endpoint | undefined;
  url: URL | null;
  /** The endpoint's live secrets, prepared for signing (`signingKey`), newest first. */
  keys: SigningKey[];
  expiresAt: number;
}

/** An entry whose endpoint exists (and can be sent to). */
export type SendableEntry = EndpointEntry & { endpoint: Endpoint; url: URL };

export class EndpointCache {
  private readonly entries = new Map<string, EndpointEntry>();
  private readonly loading = new Map<string, Promise<EndpointEntry>>();

  constructor(
    private readonly endpoints: EndpointPort,
    private readonly ttlMs: number,
    private readonly onLoad: (endpoint: Endpoint) => void,
  ) {}

  fresh(id: string, now: number): EndpointEntry | undefined {
    const cached = this.entries.get(id);
    return cached !== undefined && cached.expiresAt > now ? cached : undefined;
  }

  load(id: string, now: number): Promise<EndpointEntry> {
    let loading = this.loading.get(id);
    if (!loading) {
      loading = this.read(id, now).finally(() => this.loading.delete(id));
      this.loading.set(id, loading);
    }
    return loading;
  }

  delete(id: string): void {
    this.entries.delete(id);
  }

  private async read(id: string, now: number): Promise<EndpointEntry> {
    const endpoint = await this.endpoints.get(id);
    if (endpoint) this.onLoad(endpoint);
    const entry: EndpointEntry = {
      endpoint,
      url: endpoint ? new URL(endpoint.url) : null,
      keys: endpoint && !endpoint.disabled ? this.endpoints.activeSecrets(endpoint, now).map(signingKey) : [],
      expiresAt: now + this.ttlMs,
    };
    this.entries.set(id, entry);
    return entry;
  }
}
