/**
 * Configuration errors. Whatever goes wrong between a config file (or an `ETHHOOK_*` variable) and a
 * valid `NodeConfig` is a `ConfigError` carrying every problem found, each with the dotted path of the
 * field (`admin.port`, `chains[0].wsUrl`) and, when an environment variable set it, that variable.
 */
import { EthhookError, defineErrorCodes } from '../runtime/errors.ts';

export const configErrorCodes = defineErrorCodes({
  ETHHOOK_ERR_CONFIG_INVALID: { summary: 'the configuration does not match the schema', httpStatus: 400 },
  ETHHOOK_ERR_CONFIG_UNREADABLE: { summary: 'the configuration file cannot be read', httpStatus: 400 },
  ETHHOOK_ERR_CONFIG_SYNTAX: { summary: 'the configuration file is not valid JSON or YAML', httpStatus: 400 },
  ETHHOOK_ERR_BUNDLE: {
    summary: 'bin/ethhook.mjs could not bundle the sources at start (logged by bin/, before the node runs)',
    httpStatus: 500,
  },
});

export type ConfigErrorCode = keyof typeof configErrorCodes;

export interface ConfigIssue {
  /** Dotted path of the field; '' for the document as a whole. */
  path: string;
  message: string;
  /** The environment variable that supplied the value, when one did. */
  source?: string;
}

export class ConfigError extends EthhookError {
  readonly issues: readonly ConfigIssue[];

  constructor(code: ConfigErrorCode, issues: ConfigIssue[], context: Record<string, unknown> = {}) {
    super(code, `${configErrorCodes[code].summary}:\n${formatConfigIssues(issues)}`, { ...context, issues });
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** One line per issue, as `config check` prints them: `  admin.port: must be ... (from ETHHOOK_ADMIN__PORT)`. */
export function formatConfigIssues(issues: readonly ConfigIssue[]): string {
  return issues
    .map((issue) => `  ${issue.path || '(document)'}: ${issue.message}${issue.source ? ` (from ${issue.source})` : ''}`)
    .join('\n');
}
