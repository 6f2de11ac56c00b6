/**
 * Loads the node's configuration: the file (JSON for `.json`, YAML for `.yaml`/`.yml`; none means
 * all defaults), then the `ETHHOOK_*` environment overrides (see env.ts), then the schema (schema.ts).
 * Every problem found is collected and thrown as one `ConfigError`, each issue carrying its dotted
 * path and, when the environment supplied the value, the variable's name. Relative paths inside the
 * config (`node.dataDir`) stay relative to the working directory, as with most daemons.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { applyEnvOverrides, parseEnvOverrides, type EnvOverride } from './env.ts';
import { formatPath } from './path.ts';
import { NodeConfigSchema, type NodeConfig } from './schema.ts';

export interface LoadConfigOptions {
  /** Path of a JSON or YAML file. Absent: defaults plus environment. */
  file?: string;
  /** Where `ETHHOOK_*` overrides come from. Pass `{}` to ignore the environment. */
  env?: Readonly<Record<string, string | undefined>>;
}

export function loadConfig({ file, env = process.env }: LoadConfigOptions = {}): NodeConfig {
  const document = file === undefined ? {} : readConfigFile(file);
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    const got = Array.isArray(document) ? 'a list' : JSON.stringify(document);
    throw new ConfigError(
      'ETHHOOK_ERR_CONFIG_INVALID',
      [{ path: '', message: `must be a mapping of sections (node, admin, ...), got ${got}` }],
      { file },
    );
  }
  const sections = Object.keys(NodeConfigSchema.shape);
  const parsedEnv = parseEnvOverrides(env, sections);
  const applied = applyEnvOverrides(document, parsedEnv.overrides);
  const envIssues = [...parsedEnv.issues, ...applied.issues];

  let result = validate(applied.document);
  if (!result.success) {
    // Env values read as JSON (`ETHHOOK_NODE__ID=7`) get one more chance as the text they were written as.
    const retry = rawStringRetries(result.error.issues, parsedEnv.overrides);
    if (retry.length > 0) result = validate(applyEnvOverrides(applied.document, retry).document);
  }
  const issues = [...envIssues, ...(result.success ? [] : toConfigIssues(result.error.issues, parsedEnv.overrides))];
  if (!result.success || issues.length > 0) throw new ConfigError('ETHHOOK_ERR_CONFIG_INVALID', issues, { file });
  return result.data;
}

function validate(document: unknown) {
  return NodeConfigSchema.safeParse(document, {
    error: (issue) => (issue.code === 'invalid_type' && issue.input === undefined ? 'required' : undefined),
  });
}

/** Reads and parses the file; the document is anything the format allows (the schema judges it). */
export function readConfigFile(file: string): unknown {
  const format = formatOf(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError('ETHHOOK_ERR_CONFIG_UNREADABLE', [{ path: '', message: `cannot read ${file}: ${reason}` }], { file });
  }
  if (format === 'json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new ConfigError('ETHHOOK_ERR_CONFIG_SYNTAX', [{ path: '', message: `invalid JSON in ${file}: ${(err as Error).message}` }], {
        file,
      });
    }
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => ({ path: '', message: `invalid YAML in ${file}: ${e.message.split('\n')[0]}` }));
    throw new ConfigError('ETHHOOK_ERR_CONFIG_SYNTAX', issues, { file });
  }
  return doc.toJS() ?? {};
}

function formatOf(file: string): 'json' | 'yaml' {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  throw new ConfigError(
    'ETHHOOK_ERR_CONFIG_UNREADABLE',
    [{ path: '', message: `${file}: unknown format "${ext}"; use .json, .yaml or .yml` }],
    { file },
  );
}

/** Env values read as JSON where the schema wanted a string: only those are retried as their raw text. */
function rawStringRetries(issues: readonly z.core.$ZodIssue[], overrides: readonly EnvOverride[]): EnvOverride[] {
  const failing = new Set(
    issues.filter((issue) => issue.code === 'invalid_type' && issue.expected === 'string').map((issue) => formatPath(issue.path)),
  );
  return overrides.filter((o) => typeof o.value !== 'string' && failing.has(formatPath(o.path))).map((o) => ({ ...o, value: o.raw }));
}

/** zod issues as operators read them: one per field, unknown keys named by their full path. */
function toConfigIssues(issues: readonly z.core.$ZodIssue[], overrides: readonly EnvOverride[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        out.push(withSource({ path: formatPath([...issue.path, key]), message: 'unknown key' }, [...issue.path, key], overrides));
    } else {
      out.push(withSource({ path: formatPath(issue.path), message: issue.message }, issue.path, overrides));
    }
  }
  return out;
}

/** Attributes an issue to the deepest environment override that covers its path. */
function withSource(issue: ConfigIssue, path: readonly PropertyKey[], overrides: readonly EnvOverride[]): ConfigIssue {
  let best: EnvOverride | undefined;
  for (const o of overrides) {
    const covers = o.path.length <= path.length && o.path.every((segment, i) => segment === path[i]);
    if (covers && (best === undefined || o.path.length >= best.path.length)) best = o;
  }
  return best === undefined ? issue : { ...issue, source: best.variable };
}
