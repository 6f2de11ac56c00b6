/**
 * Bearer-token authentication for the admin API.
 *
 * - `Authorization: Bearer <token>` (scheme case-insensitive). Tokens are kept only as SHA-256 digests;
 *   a presented token is hashed and compared with every configured digest by `timingSafeEqual`, all of
 *   them every time, so neither the content nor the position of a token leaks through timing.
 * - Roles are ordered: `operate` may do everything `read` may.
 * - A principal is known by its role and a fingerprint (first 8 hex characters of the digest), which is
 *   what audit lines show; the token itself is never logged or echoed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AdminRole, AdminTokenConfig } from '../../config/schema.ts';

export type RouteAuth = 'public' | AdminRole;

export interface Principal {
  role: AdminRole;
  /** Short, non-reversible id of the token for audit lines. */
  fingerprint: string;
}

const ROLE_RANK: Record<AdminRole, number> = { read: 1, operate: 2 };
const BEARER = /^Bearer +([\x21-\x7e]+) *$/i;

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function tokenFingerprint(token: string): string {
  return digest(token).toString('hex').slice(0, 8);
}

export class TokenTable {
  private readonly entries: { digest: Buffer; principal: Principal }[];

  constructor(tokens: readonly AdminTokenConfig[]) {
    this.entries = tokens.map((t) => ({ digest: digest(t.token), principal: { role: t.role, fingerprint: tokenFingerprint(t.token) } }));
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * The principal behind an Authorization header: `undefined` when no bearer token was presented,
   * `null` when one was and it is unknown.
   */
  authenticate(authorization: string | undefined): Principal | null | undefined {
    if (authorization === undefined) return undefined;
    const match = BEARER.exec(authorization);
    if (!match) return null;
    const presented = digest(match[1]!);
    let found: Principal | null = null;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, presented)) found = entry.principal;
    }
    return found;
  }
}

export function roleAllows(role: AdminRole, required: RouteAuth): boolean {
  return required === 'public' || ROLE_RANK[role] >= ROLE_RANK[required];
}
