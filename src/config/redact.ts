/**
 * A copy of a config that is safe to print or log: admin tokens replaced by their fingerprint
 * (`sha256:` + 12 hex characters of the hash, never a character of the token), and secrets that RPC
 * providers and the PostgreSQL store put in URLs (a password in the user-info, an API key as a path
 * segment, `?key=` query values) masked,
 * while scheme, host and port stay readable so an operator can still tell which endpoint is which.
 */
import { secretFingerprint } from '../runtime/log.ts';
import type { NodeConfig } from './schema.ts';

/**
 * Path segments this long are taken for API keys (Infura, Alchemy, QuickNode all qualify); they keep
 * 4 characters.
 */
const KEY_LIKE_SEGMENT = /^[A-Za-z0-9_-]{16,}$/;

export function redactConfig(config: NodeConfig): NodeConfig {
  const copy = structuredClone(config);
  copy.admin.tokens = copy.admin.tokens.map((t) => ({ ...t, token: secretFingerprint(t.token) }));
  copy.chains = copy.chains.map((c) => ({
    ...c,
    providers: c.providers.map((p) => ({
      ...p,
      ...(p.wsUrl ? { wsUrl: redactUrl(p.wsUrl) } : {}),
      ...(p.httpUrl ? { httpUrl: redactUrl(p.httpUrl) } : {}),
    })),
  }));
  if (copy.governance.url !== undefined) copy.governance.url = redactUrl(copy.governance.url);
  if (copy.store.kind === 'postgres') copy.store.url = redactUrl(copy.store.url);
  return copy;
}

export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return '****';
  }
  const pathname = url.pathname
    .split('/')
    .map((segment) => (KEY_LIKE_SEGMENT.test(segment) ? `${segment.slice(0, 4)}****` : segment))
    .join('/');
  if (url.password === '' && pathname === url.pathname && url.search === '') return text;
  if (url.password !== '') url.password = '****';
  url.pathname = pathname;
  for (const key of [...url.searchParams.keys()]) url.searchParams.set(key, '****');
  return url.toString();
}
