/**
 * `ETHHOOK_*` environment overrides, applied on top of the config file before validation.
 *
 * Mapping:
 * - `ETHHOOK_<SECTION>__<FIELD>[__<FIELD>...]=value`: `__` separates nesting levels. An all-caps
 *   segment is snake case turned camel case (`NODE__DATA_DIR` → `node.dataDir`, `DEV_CHAIN__ENABLED` →
 *   `devChain.enabled`); a segment with lower-case letters is taken verbatim (`RUNTIME__ACTORS__deliverer__PLACEMENT`);
 *   a numeric segment indexes a list (`CHAINS__0__WS_URL` → `chains[0].wsUrl`).
 * - `ETHHOOK_<SECTION>=json` replaces a whole section (`ETHHOOK_CHAINS='[{"chainId":1,...}]'`).
 * - `ETHHOOK_ADMIN_TOKENS="read:tok1,operate:tok2"` sets `admin.tokens` (role, colon, token; comma-separated).
 * - Values are JSON when they parse as JSON (`9000`, `true`, `[1,2]`) and strings otherwise; where the
 *   schema wants a string and the JSON reading is not one (`ETHHOOK_NODE__ID=7`), the loader uses the raw
 *   text. An empty value counts as unset, so `FOO=${UNSET}` in a compose file changes nothing.
 * - Shallower paths apply first, so `ETHHOOK_ADMIN='{...}'` never erases `ETHHOOK_ADMIN__PORT`.
 * - `ETHHOOK_CONFIG` names the config file (read by the CLI), and any other `ETHHOOK_*` name without
 *   `__` that is not a section is left alone, except names that look like a section with a single
 *   underscore (`ETHHOOK_ADMIN_PORT`), which are reported as the likely typo they are.
 *
 * Parsing never throws: every problem becomes a `ConfigIssue` naming the variable.
 */
import type { ConfigIssue } from './errors.ts';
import { formatPath } from './path.ts';
import { ADMIN_ROLES } from './schema.ts';

export const ENV_PREFIX = 'ETHHOOK_';
export const CONFIG_FILE_VARIABLE = 'ETHHOOK_CONFIG';
export const ADMIN_TOKENS_VARIABLE = 'ETHHOOK_ADMIN_TOKENS';

export type ConfigPath = (string | number)[];

export interface EnvOverride {
  variable: string;
  path: ConfigPath;
  /** The JSON reading of `raw` when it has one, else `raw`. */
  value: unknown;
  raw: string;
}

export interface EnvOverrides {
  overrides: EnvOverride[];
  issues: ConfigIssue[];
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_LIST_INDEX = 1_000;

/** Reads every `ETHHOOK_*` variable of `env` into overrides (shallowest first) and issues. */
export function parseEnvOverrides(env: Readonly<Record<string, string | undefined>>, sections: readonly string[]): EnvOverrides {
  const overrides: EnvOverride[] = [];
  const issues: ConfigIssue[] = [];
  for (const variable of Object.keys(env).sort()) {
    const raw = env[variable];
    if (!variable.startsWith(ENV_PREFIX) || raw === undefined || raw === '' || variable === CONFIG_FILE_VARIABLE) continue;
    if (variable === ADMIN_TOKENS_VARIABLE) {
      const tokens = parseAdminTokens(raw, variable);
      if ('issue' in tokens) issues.push(tokens.issue);
      else overrides.push({ variable, path: ['admin', 'tokens'], value: tokens.value, raw });
      continue;
    }
    const path = parseVariableName(variable.slice(ENV_PREFIX.length), sections, variable);
    if (path === undefined) continue;
    if ('issue' in path) issues.push(path.issue);
    else overrides.push({ variable, path: path.value, value: parseValue(raw), raw });
  }
  overrides.sort((a, b) => a.path.length - b.path.length);
  return { overrides, issues };
}

type Parsed<T> = { value: T } | { issue: ConfigIssue };

function parseVariableName(name: string, sections: readonly string[], variable: string): Parsed<ConfigPath> | undefined {
  const segments = name.split('__');
  if (segments.length === 1) {
    const section = toKey(name);
    if (sections.includes(section)) return { value: [section] };
    const typo = sections.find((s) => name.startsWith(`${toEnvSegment(s)}_`));
    if (typo === undefined) return undefined;
    const rest = name.slice(toEnvSegment(typo).length + 1);
    const suggestion = `${ENV_PREFIX}${toEnvSegment(typo)}__${rest}`;
    return {
      issue: {
        path: formatPath([typo, toKey(rest)]),
        source: variable,
        message: `not a config variable; nesting levels are separated by "__": did you mean ${suggestion}?`,
      },
    };
  }
  const path: ConfigPath = [];
  for (const segment of segments) {
    if (segment === '')
      return { issue: { path: '', source: variable, message: 'empty name segment (three or more underscores in a row?)' } };
    if (/^\d+$/.test(segment)) {
      const index = Number(segment);
      if (index > MAX_LIST_INDEX) return { issue: { path: '', source: variable, message: `list index ${segment} is too large` } };
      path.push(index);
      continue;
    }
    const key = toKey(segment);
    if (FORBIDDEN_KEYS.has(key)) return { issue: { path: '', source: variable, message: `"${key}" is not allowed as a key` } };
    path.push(key);
  }
  return { value: path };
}

/** `DATA_DIR` → `dataDir`; segments with lower-case letters are kept as written. */
function toKey(segment: string): string {
  if (/[a-z]/.test(segment)) return segment;
  return segment.toLowerCase().replace(/_+([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** `devChain` → `DEV_CHAIN`. */
function toEnvSegment(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function parseAdminTokens(raw: string, variable: string): Parsed<{ role: string; token: string }[]> {
  const tokens: { role: string; token: string }[] = [];
  for (const [i, entry] of raw.split(',').entries()) {
    const item = entry.trim();
    if (item === '') continue;
    const colon = item.indexOf(':');
    const role = item.slice(0, colon).trim();
    if (colon < 0 || !(ADMIN_ROLES as readonly string[]).includes(role)) {
      return {
        issue: {
          path: 'admin.tokens',
          source: variable,
          message: `entry ${i + 1} must be "<role>:<token>" with role ${ADMIN_ROLES.join(' or ')}`,
        },
      };
    }
    tokens.push({ role, token: item.slice(colon + 1).trim() });
  }
  return { value: tokens };
}

/**
 * Returns a copy of `document` with the overrides applied in order. An override that cannot be placed
 * (a field name on a list) becomes an issue instead.
 */
export function applyEnvOverrides(
  document: unknown,
  overrides: readonly EnvOverride[],
): { document: Record<string, unknown>; issues: ConfigIssue[] } {
  const root: Record<string, unknown> = isRecord(document) ? structuredClone(document) : {};
  const issues: ConfigIssue[] = [];
  for (const override of overrides) {
    const problem = setPath(root, override.path, override.value);
    if (problem !== undefined) issues.push({ path: formatPath(override.path), source: override.variable, message: problem });
  }
  return { document: root, issues };
}

function setPath(root: Record<string, unknown>, path: ConfigPath, value: unknown): string | undefined {
  let container: Record<string | number, unknown> | unknown[] = root;
  for (const [i, segment] of path.entries()) {
    if (Array.isArray(container) && typeof segment !== 'number') {
      return `${formatPath(path.slice(0, i))} is a list; address its items by index (…__0__…)`;
    }
    const slot = container as Record<string | number, unknown>;
    if (i === path.length - 1) {
      slot[segment] = value;
      return undefined;
    }
    const next = slot[segment];
    if (!isRecord(next) && !Array.isArray(next)) slot[segment] = typeof path[i + 1] === 'number' ? [] : {};
    container = slot[segment] as Record<string | number, unknown> | unknown[];
  }
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
