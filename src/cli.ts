/**
 * The `ethhook` command line (entry: bin/ethhook.mjs). Commands:
 *
 *   start [--config FILE]   run a node (FILE, else $ETHHOOK_CONFIG, else the dev defaults)
 *   config check FILE       validate FILE + ETHHOOK_* overrides and make start's own checks
 *                           (src/start-checks.ts); "ok", or each error with its path
 *   config print [FILE]     the effective configuration as JSON, secrets masked
 *   chain reset-cursor --chain ID --from N|latest [--config FILE]
 *                           on a stopped node: forget a chain's cursor and start it at N or the head
 *   store migrate [--dry-run] [--config FILE]
 *                           apply the PostgreSQL store's pending migrations, or (--dry-run) list them
 *   store copy --from level:DIR --to postgres:URL [--schema NAME]
 *                           copy a stopped node's LevelDB store into PostgreSQL (src/store/copy.ts)
 *   governance-serve ...    the reference governance server (src/governance-server/main.ts owns its flags)
 *   errors                  the error catalog: code, HTTP status, layer, summary
 *   help [COMMAND], --help, --version   (`help config`: every config subcommand)
 *
 * Every command is in COMMANDS, which is also what `--help` prints, so the help cannot forget one.
 * A command with `ownFlags` takes the rest of the command line as it is (governance-serve parses its
 * own flags); the others share OPTIONS and say which of them apply.
 *
 * Exit codes: 0 success; 1 invalid configuration or a node that stopped on failure (runNode's code);
 * 2 usage errors (unknown command or flag, missing argument). Output goes straight to stdout/stderr:
 * this is the operator's terminal, not the node's log.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ethhookVersion } from './version.ts';
import { ConfigError, formatConfigIssues } from './config/errors.ts';
import { ERROR_CATALOG } from './errors.ts';
import { EthhookError } from './runtime/errors.ts';
import { GOVERNANCE_SERVE_USAGE, runGovernanceServe } from './governance-server/main.ts';
import { CONFIG_FILE_VARIABLE } from './config/env.ts';
import { loadConfig } from './config/load.ts';
import { redactConfig, redactUrl } from './config/redact.ts';
import type { NodeConfig } from './config/schema.ts';
import { START_CHECK_LIMITS, startProblems } from './start-checks.ts';
import { DEFAULT_PG_POOL_OPTIONS, PG_SCHEMA_NAME } from './store/postgres/pool.ts';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

interface Command {
  usage: string;
  summary: string;
  flags: string[];
  /** Help lines of the flags whose meaning is this command's own (store copy's --from). */
  flagHelp?: Record<string, string>;
  /** Flag lines of a command that parses its own flags (shown by --help), and its full help text. */
  ownFlags?: { lines: string[]; help: string };
  run(positionals: string[], flags: Flags): Promise<number>;
}

interface Flags {
  config?: string;
  'ignore-env'?: boolean;
  chain?: string;
  from?: string;
  'dry-run'?: boolean;
  to?: string;
  schema?: string;
}

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  'ignore-env': { type: 'boolean' },
  chain: { type: 'string' },
  from: { type: 'string' },
  'dry-run': { type: 'boolean' },
  to: { type: 'string' },
  schema: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

const FLAG_HELP: Record<string, string> = {
  config: '-c, --config FILE   configuration file, JSON or YAML (default: $ETHHOOK_CONFIG, else the dev defaults)',
  'ignore-env': '--ignore-env        do not apply ETHHOOK_* environment overrides',
  chain: "--chain ID          the chain id (one of the configuration's chains)",
  from: '--from N|latest     the block to start at, or "latest": the confirmed head at the next start',
  'dry-run': '--dry-run           list the migrations that would be applied, and write nothing',
  to: '--to postgres:URL   the PostgreSQL server (postgres://user:password@host/db); "postgres:" alone: $ETHHOOK_STORE__URL',
  schema: '--schema NAME       the schema to copy into, migrated first (default ethhook, as store.schema)',
};

const COMMANDS: Record<string, Command> = {
  start: {
    usage: 'ethhook start [--config FILE]',
    summary: 'Run a node until SIGTERM/SIGINT. Without a file: the dev defaults, an embedded anvil chain and the demo (README).',
    flags: ['config'],
    run: async (positionals, flags) => {
      if (positionals.length > 0) return usageError(`start takes no arguments (got "${positionals[0]}"); use --config FILE`);
      const file = flags.config ?? process.env[CONFIG_FILE_VARIABLE];
      const config = loadOrReport(file, process.env);
      if (config === undefined || !startableOrReport(config, file, process.env)) return EXIT_FAILURE;
      const { runNode } = await import('./main.ts');
      // A finished shutdown may leave handles behind; the node has said its last word, so exit now.
      process.exit(await runNode(config));
    },
  },
  'config check': {
    usage: 'ethhook config check FILE [--ignore-env]',
    summary:
      'Validate FILE with the ETHHOOK_* overrides applied, and make the checks start makes before it opens anything ' +
      '(ETHHOOK_MASTER_KEY set and valid when security.generateMasterKey is false). Prints "ok", or each error with ' +
      `its path and exits 1. ${START_CHECK_LIMITS}`,
    flags: ['ignore-env'],
    run: async ([file, ...rest], flags) => {
      if (file === undefined) return usageError('config check needs a FILE');
      if (rest.length > 0) return usageError(`config check takes one FILE (got "${rest[0]}" too)`);
      const env = flags['ignore-env'] ? {} : process.env;
      const config = loadOrReport(file, env);
      if (config === undefined || !startableOrReport(config, file, env)) return EXIT_FAILURE;
      process.stdout.write('ok\n');
      return EXIT_OK;
    },
  },
  'config print': {
    usage: 'ethhook config print [FILE] [--ignore-env]',
    summary: 'Print the effective configuration (defaults, FILE, ETHHOOK_* overrides) as JSON, tokens and URL keys masked.',
    flags: ['ignore-env'],
    run: async ([file, ...rest], flags) => {
      if (rest.length > 0) return usageError(`config print takes at most one FILE (got "${rest[0]}" too)`);
      const config = loadOrReport(file, flags['ignore-env'] ? {} : process.env);
      if (config === undefined) return EXIT_FAILURE;
      process.stdout.write(`${JSON.stringify(redactConfig(config), null, 2)}\n`);
      return EXIT_OK;
    },
  },
  'chain reset-cursor': {
    usage: 'ethhook chain reset-cursor --chain ID --from N|latest [--config FILE]',
    summary:
      "On a stopped node: forget a chain's cursor, reorg window and block 0, and start it at block N or at the head. The way out of ETHHOOK_ERR_CHAIN_MISMATCH and ETHHOOK_ERR_REORG_TOO_DEEP (runbooks/chains.md); a running node: POST /admin/chains/ID/reset-cursor.",
    flags: ['config', 'chain', 'from'],
    run: async (positionals, flags) => {
      if (positionals.length > 0) return usageError(`chain reset-cursor takes no arguments (got "${positionals[0]}")`);
      if (flags.chain === undefined || !/^[1-9][0-9]{0,15}$/.test(flags.chain))
        return usageError('chain reset-cursor needs --chain ID (a positive integer)');
      if (flags.from === undefined || !/^(?:latest|0|[1-9][0-9]{0,15})$/.test(flags.from))
        return usageError('chain reset-cursor needs --from N (a block number) or --from latest');
      const file = flags.config ?? process.env[CONFIG_FILE_VARIABLE];
      const config = loadOrReport(file, process.env);
      if (config === undefined) return EXIT_FAILURE;
      const { resetChainCursorOffline } = await import('./chain-reset.ts');
      const from = flags.from === 'latest' ? 'latest' : Number(flags.from);
      try {
        const done = await resetChainCursorOffline(config, { chainId: Number(flags.chain), from });
        process.stdout.write(
          `chain ${flags.chain} (${done.chain}): cursor reset in ${done.dbDir}; the listener starts at ${from === 'latest' ? 'the confirmed head' : `block ${from}`} at the next start\n`,
        );
        return EXIT_OK;
      } catch (err) {
        if (!(err instanceof EthhookError)) throw err;
        process.stderr.write(`ethhook: ${err.message} [${err.code}]\n`);
        return EXIT_FAILURE;
      }
    },
  },
  'store migrate': {
    usage: 'ethhook store migrate [--dry-run] [--config FILE]',
    summary:
      "Apply the PostgreSQL store's pending schema migrations (store.kind: postgres), as a node does at start; with --dry-run, list them (version and name) and write nothing. A schema migrated by a newer ethhook is refused (ETHHOOK_ERR_STORE_SCHEMA_NEWER).",
    flags: ['config', 'dry-run'],
    run: async (positionals, flags) => {
      if (positionals.length > 0) return usageError(`store migrate takes no arguments (got "${positionals[0]}")`);
      const file = flags.config ?? process.env[CONFIG_FILE_VARIABLE];
      const config = loadOrReport(file, process.env);
      if (config === undefined) return EXIT_FAILURE;
      if (config.store.kind !== 'postgres') {
        process.stderr.write(
          `ethhook: store migrate is for a PostgreSQL store, and this configuration's store is LevelDB (store.kind: level), which has no migrations; set store.kind: postgres and store.url (or ETHHOOK_STORE__URL)\n`,
        );
        return EXIT_FAILURE;
      }
      return migrateStore(config.store, flags['dry-run'] === true);
    },
  },
  'store copy': {
    usage: 'ethhook store copy --from level:DIR --to postgres:URL [--schema NAME]',
    summary:
      "Copy a STOPPED node's LevelDB store into a PostgreSQL schema (migrated first): endpoints (their secrets stay sealed: " +
      'run the new node with the same master key), subscriptions, pending jobs (held ones too), dead letters, chain cursors, ' +
      'match records, deferred jobs, the attempt log and governance state. A store a running node holds is refused ' +
      '(ETHHOOK_ERR_STORE_LOCKED). Run again, it writes the same rows: copy into an empty schema or one it wrote, never one ' +
      'a node has run on (jobs it delivered would come back). Prints a count per kind, then one JSON summary line.',
    flags: ['from', 'to', 'schema'],
    flagHelp: { from: "--from level:DIR    the stopped node's data directory (node.dataDir), or its store in it (<dataDir>/db)" },
    run: async (positionals, flags) => {
      if (positionals.length > 0) return usageError(`store copy takes no arguments (got "${positionals[0]}")`);
      if (flags.from === undefined || !flags.from.startsWith('level:') || flags.from === 'level:')
        return usageError("store copy needs --from level:DIR (the stopped node's data directory or its db directory)");
      if (flags.to === undefined || !flags.to.startsWith('postgres:')) return usageError('store copy needs --to postgres:URL');
      const url = postgresUrl(flags.to);
      if (url === undefined) return usageError('store copy --to postgres: (without a URL) takes ETHHOOK_STORE__URL, which is not set');
      if (flags.schema !== undefined && !PG_SCHEMA_NAME.test(flags.schema))
        return usageError(`store copy --schema must be a lower-case SQL identifier (a-z, 0-9, _), got "${flags.schema}"`);
      return copyStore(flags.from.slice('level:'.length), url, flags.schema);
    },
  },
  'governance-serve': {
    usage: 'ethhook governance-serve --key FILE [--port N] [--log FILE] [--publish-token-file FILE] | --generate-key FILE',
    summary: 'Run the reference governance server (signed, sequenced control messages over WebSocket; docs/governance.md).',
    flags: [],
    ownFlags: {
      lines: GOVERNANCE_SERVE_USAGE.split('\n').filter((line) => /^ {2}--/.test(line)),
      help: GOVERNANCE_SERVE_USAGE,
    },
    run: (args) => runGovernanceServe(args),
  },
  errors: {
    usage: 'ethhook errors',
    summary: 'Print the error catalog: every ETHHOOK_ERR_* code with its HTTP status, layer and summary.',
    flags: [],
    run: async (positionals) => {
      if (positionals.length > 0) return usageError(`errors takes no arguments (got "${positionals[0]}")`);
      const width = Math.max(...ERROR_CATALOG.map((e) => e.code.length));
      process.stdout.write(
        ERROR_CATALOG.map((e) => `${e.code.padEnd(width)}  ${e.httpStatus}  ${e.layer.padEnd(14)}  ${e.summary}\n`).join(''),
      );
      return EXIT_OK;
    },
  },
  help: {
    usage: 'ethhook help [COMMAND]',
    summary: 'Show this help, or the help of one command.',
    flags: [],
    run: async (positionals) => {
      const name = positionals.join(' ');
      if (name === '') {
        process.stdout.write(helpText());
        return EXIT_OK;
      }
      const found = findCommand(positionals);
      const group = positionals.length === 1 ? commandGroup(positionals[0]!) : [];
      if (found === undefined && group.length === 0) return unknownCommand(positionals);
      process.stdout.write(found ? commandHelp(found.command) : group.map(commandHelp).join('\n'));
      return EXIT_OK;
    },
  },
};

function helpText(): string {
  const commands = Object.values(COMMANDS)
    .map(
      (c) =>
        `  ${c.usage}\n      ${c.summary}\n${flagLines(c)
          .map((line) => `      ${line}\n`)
          .join('')}`,
    )
    .join('');
  return `ethhook ${version()} — EVM events to signed webhooks and live streams

Usage: ethhook <command> [options]

Commands:
${commands}
Global options:
  -h, --help          show help (after a command: that command's help)
  -v, --version       print the version

Environment:
  ETHHOOK_CONFIG                       configuration file for "start" when --config is not given
  ETHHOOK_<SECTION>__<FIELD>=value     override any field: ETHHOOK_ADMIN__PORT=9000, ETHHOOK_LOG__LEVEL=debug,
                                       ETHHOOK_CHAINS__0__WS_URL=wss://... (JSON values are parsed)
  ETHHOOK_ADMIN_TOKENS=read:T1,operate:T2   admin bearer tokens and their roles
  ETHHOOK_MASTER_KEY                   32 bytes (hex or base64) sealing webhook secrets at rest
  ETHHOOK_STORE__URL                   the PostgreSQL store's URL (store.kind: postgres), kept out of files

Exit codes: 0 success, 1 invalid configuration or node failure, 2 usage error.
`;
}

function flagLines(command: Command): string[] {
  return command.ownFlags?.lines.map((line) => line.trim()) ?? command.flags.map((f) => command.flagHelp?.[f] ?? FLAG_HELP[f]!);
}

function commandHelp(command: Command): string {
  if (command.ownFlags) return command.ownFlags.help;
  return `Usage: ${command.usage}\n\n${command.summary}\n${flagLines(command)
    .map((line) => `  ${line}\n`)
    .join('')}`;
}

/** `['config', 'check', 'x.yaml']` → the `config check` command and its arguments (`['x.yaml']`). */
function findCommand(positionals: string[]): { command: Command; args: string[] } | undefined {
  for (const words of [2, 1]) {
    const command = COMMANDS[positionals.slice(0, words).join(' ')];
    if (command !== undefined && positionals.length >= words) return { command, args: positionals.slice(words) };
  }
  return undefined;
}

/** The commands whose first word is `word` (`config` → config check, config print). */
function commandGroup(word: string): Command[] {
  return Object.entries(COMMANDS)
    .filter(([name]) => name.startsWith(`${word} `))
    .map(([, command]) => command);
}

function unknownCommand(positionals: string[]): number {
  const group = Object.keys(COMMANDS).filter((name) => name.startsWith(`${positionals[0]} `));
  if (group.length > 0) return usageError(`"${positionals[0]}" needs a subcommand: ${group.map((n) => n.split(' ')[1]).join(', ')}`);
  return usageError(`unknown command "${positionals[0]}"`);
}

function loadOrReport(file: string | undefined, env: NodeJS.ProcessEnv | Record<string, never>): NodeConfig | undefined {
  try {
    return loadConfig({ file, env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`ethhook: invalid configuration${file ? ` (${file})` : ''} [${err.code}]\n${formatConfigIssues(err.issues)}\n`);
    return undefined;
  }
}

/** The start checks on a valid configuration: true when a start may proceed, else each failure on stderr. */
function startableOrReport(config: NodeConfig, file: string | undefined, env: NodeJS.ProcessEnv | Record<string, never>): boolean {
  const problems = startProblems(config, env);
  if (problems.length === 0) return true;
  // The field or variable at fault: `field` when the check names one, else the key's `source`.
  const where = (p: EthhookError) => [p.context.field, p.context.source].find((v): v is string => typeof v === 'string') ?? '';
  const lines = problems.map((p) => `  ${where(p)}: ${p.message} [${p.code}]`);
  process.stderr.write(`ethhook: a node cannot start with this configuration${file ? ` (${file})` : ''}\n${lines.join('\n')}\n`);
  return false;
}

/** How long `store migrate` waits for an unreachable server before it gives up. */
const MIGRATE_RETRY_FOR_MS = 10_000;

async function migrateStore(store: Extract<NodeConfig['store'], { kind: 'postgres' }>, dryRun: boolean): Promise<number> {
  const [{ openPgPool }, { migrate, planMigrations }, { createLogger }, { Registry }] = await Promise.all([
    import('./store/postgres/pool.ts'),
    import('./store/postgres/migrate.ts'),
    import('./runtime/log.ts'),
    import('prom-client'),
  ]);
  const { url, poolSize, schema, statementTimeoutMs } = store;
  const pool = await openPgPool({
    url,
    poolSize,
    schema,
    statementTimeoutMs,
    retryForMs: MIGRATE_RETRY_FOR_MS,
    logger: createLogger({ level: 'silent' }),
    registry: new Registry(),
  });
  const line = (m: { version: number; name: string }) => `  ${String(m.version).padStart(3, '0')} ${m.name}\n`;
  try {
    const plan = await planMigrations(pool);
    const at = `schema ${schema} on ${pool.target} is at version ${plan.applied.at(-1) ?? 0}`;
    if (plan.pending.length === 0) {
      process.stdout.write(`${at}: up to date, nothing to apply\n`);
    } else if (dryRun) {
      process.stdout.write(`${at}; would apply:\n${plan.pending.map(line).join('')}`);
    } else {
      const applied = await migrate(pool);
      const by = applied.length === 0 ? ': another instance applied them meanwhile' : `; applied:\n${applied.map(line).join('')}`;
      process.stdout.write(
        `schema ${schema} on ${pool.target} was at version ${plan.applied.at(-1) ?? 0}${by}${applied.length === 0 ? '\n' : ''}`,
      );
    }
    return EXIT_OK;
  } catch (err) {
    const code = err instanceof EthhookError ? ` [${err.code}]` : '';
    process.stderr.write(`ethhook: store migrate: ${err instanceof Error ? err.message : String(err)}${code}\n`);
    return EXIT_FAILURE;
  } finally {
    await pool.close();
  }
}

/** The URL of `--to postgres:URL`: the URL after the prefix, the value itself when it is one (`postgres://…`), $ETHHOOK_STORE__URL when empty. */
function postgresUrl(to: string): string | undefined {
  const rest = to.slice('postgres:'.length);
  if (rest.startsWith('//')) return to;
  if (rest !== '') return rest;
  const env = process.env.ETHHOOK_STORE__URL;
  return env === undefined || env === '' ? undefined : env;
}

/** How long `store copy` waits for an unreachable server before it gives up. */
const COPY_RETRY_FOR_MS = 10_000;

async function copyStore(dir: string, url: string, schema: string | undefined): Promise<number> {
  const [{ copyLevelToPostgres, levelStoreDir }, { createLogger }, { Registry }] = await Promise.all([
    import('./store/copy.ts'),
    import('./runtime/log.ts'),
    import('prom-client'),
  ]);
  const levelDir = await levelStoreDir(resolve(dir));
  if (levelDir === undefined) {
    process.stderr.write(
      `ethhook: store copy: no LevelDB store in ${resolve(dir)} (neither it nor its db/ holds one): give the node's data directory or its db directory\n`,
    );
    return EXIT_FAILURE;
  }
  process.stdout.write(`copying level:${levelDir} into schema ${schema ?? DEFAULT_PG_POOL_OPTIONS.schema} on postgres:${redactUrl(url)}\n`);
  try {
    const summary = await copyLevelToPostgres({
      levelDir,
      url,
      ...(schema === undefined ? {} : { schema }),
      retryForMs: COPY_RETRY_FOR_MS,
      logger: createLogger({ level: 'silent' }),
      registry: new Registry(),
      onCopied: (kind, copied) => {
        const detail =
          typeof copied === 'number'
            ? ''
            : ` (${copied.held === undefined ? '' : `${copied.held} held, `}${copied.superseded === undefined ? '' : `${copied.superseded} superseded, `}${copied.new} new)`;
        process.stdout.write(`  ${kind.padEnd(26)} ${String(typeof copied === 'number' ? copied : copied.copied).padStart(9)}${detail}\n`);
      },
    });
    process.stdout.write(
      "webhook secrets were copied sealed: run the PostgreSQL node with this node's master key (ETHHOOK_MASTER_KEY, or its <dataDir>/master.key)\n",
    );
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return EXIT_OK;
  } catch (err) {
    const code = err instanceof EthhookError ? ` [${err.code}]` : '';
    process.stderr.write(`ethhook: store copy: ${err instanceof Error ? err.message : String(err)}${code}\n`);
    return EXIT_FAILURE;
  }
}

function usageError(message: string): number {
  process.stderr.write(`ethhook: ${message}\n\n${helpText()}`);
  return EXIT_USAGE;
}

const version = ethhookVersion;

async function main(argv: string[]): Promise<number> {
  const own = argv[0] === undefined ? undefined : COMMANDS[argv[0]];
  if (own?.ownFlags) return own.run(argv.slice(1), {});
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    return usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return EXIT_OK;
  }
  if (positionals.length === 0) {
    if (values.help) return COMMANDS.help!.run([], {});
    return usageError('no command given');
  }
  const found = findCommand(positionals);
  if (found === undefined && values.help && positionals.length === 1) return COMMANDS.help!.run(positionals, {});
  if (found === undefined) return unknownCommand(positionals);
  const { command, args } = found;
  if (values.help) {
    process.stdout.write(commandHelp(command));
    return EXIT_OK;
  }
  const given = (Object.keys(values) as (keyof typeof values)[]).filter((k) => k !== 'help' && k !== 'version');
  const foreign = given.find((flag) => !command.flags.includes(flag));
  if (foreign !== undefined) return usageError(`--${foreign} does not apply to "${command.usage.split(' [')[0]}"`);
  return command.run(args, values);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`ethhook: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = EXIT_FAILURE;
}
