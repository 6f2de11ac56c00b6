/**
 * Server-side request forgery guard for webhook targets, shared by the admin API (src/actors/admin/v1/
 * target.ts, when an endpoint is created or changed) and the Deliverer (its HTTP client's connector).
 *
 * - `checkTarget(url, policy)`: the URL must be http(s); its host is resolved (every address, as
 *   `dns.lookup({ all: true })` returns them) and, unless `policy.allowPrivate`, every address must be
 *   global unicast (see `ip-ranges.ts`). A host with one bad address among good ones is refused: an
 *   attacker controlling DNS would otherwise choose which one we connect to. Used when an endpoint is
 *   created or changed, to answer with a clear reason.
 * - `pinnedConnector(policy, options)`: an undici `connect` function that runs the same check for every
 *   new connection and connects to the address it checked, never resolving again. A DNS answer that
 *   changes between the check and the connection (rebinding) therefore cannot reach a private address.
 *   TLS still verifies the certificate against the URL's host name (SNI = host, not the address).
 *   Keep-alive sockets were checked when opened.
 * - `policy.lookup` replaces DNS (tests, or a resolver of the operator's choice).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { buildConnector as BuildConnector } from 'undici';
import { buildConnector } from '../undici-parts.ts';
import { EthhookError } from '../runtime/errors.ts';
import { classifyAddress } from './ip-ranges.ts';

export interface ResolvedAddress {
  address: string;
  family: number;
}

export type LookupAll = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export interface TargetPolicy {
  /** Development only: allow loopback, private and other non-global addresses. */
  allowPrivate: boolean;
  lookup?: LookupAll;
}

/** `scheme` and `address` are the target's fault; `dns` may be transient. */
export type RefusalKind = 'scheme' | 'dns' | 'address';

export type TargetCheck = { ok: true; address: string; family: number } | { ok: false; kind: RefusalKind; reason: string };

const defaultLookup: LookupAll = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export async function checkTarget(url: string | URL, policy: TargetPolicy): Promise<TargetCheck> {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return { ok: false, kind: 'scheme', reason: 'not a valid URL' };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return { ok: false, kind: 'scheme', reason: `scheme ${parsed.protocol} is not http or https` };
  }
  return checkHost(parsed.hostname.replace(/^\[(.*)\]$/, '$1'), policy);
}

/** Resolves a host name (or takes an IP literal) and applies the policy to every address. */
export async function checkHost(hostname: string, policy: TargetPolicy): Promise<TargetCheck> {
  let addresses: readonly ResolvedAddress[];
  if (isIP(hostname) !== 0) {
    addresses = [{ address: hostname, family: isIP(hostname) }];
  } else {
    try {
      addresses = await (policy.lookup ?? defaultLookup)(hostname);
    } catch (err) {
      return { ok: false, kind: 'dns', reason: `cannot resolve ${hostname}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
    }
  }
  const first = addresses[0];
  if (first === undefined) return { ok: false, kind: 'dns', reason: `${hostname} resolved to no address` };
  if (!policy.allowPrivate) {
    for (const { address } of addresses) {
      const verdict = classifyAddress(address);
      if (verdict.global) continue;
      return { ok: false, kind: 'address', reason: address === hostname ? verdict.reason : `${hostname}: ${verdict.reason}` };
    }
  }
  return { ok: true, address: first.address, family: first.family };
}

export type ConnectOptions = BuildConnector.BuildOptions & {
  /** Bounds the DNS lookup and the TCP/TLS handshake, each. Default 10 s. */
  timeout?: number;
};

export function pinnedConnector(policy: TargetPolicy, options: ConnectOptions = {}): BuildConnector.connector {
  const connect = buildConnector(options);
  const lookupTimeoutMs = options.timeout ?? 10_000;
  return (opts, callback) => {
    withTimeout(checkHost(opts.hostname, policy), lookupTimeoutMs, opts.hostname).then(
      (check) => {
        if (!check.ok) {
          callback(new EthhookError('ETHHOOK_ERR_TARGET_REFUSED', check.reason, { host: opts.hostname, kind: check.kind }), null);
          return;
        }
        const servername = opts.servername ?? (isIP(opts.hostname) === 0 ? opts.hostname : undefined);
        connect({ ...opts, hostname: check.address, ...(servername ? { servername } : {}) }, callback);
      },
      (err: Error) => callback(err, null),
    );
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, host: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const err = new Error(`DNS lookup of ${host} timed out after ${ms} ms`) as NodeJS.ErrnoException;
      err.code = 'ETIMEOUT';
      reject(err);
    }, ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
