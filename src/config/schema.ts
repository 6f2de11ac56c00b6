/**
 * The configuration of one ethhook node: a single zod schema, the only description of what a config
 * file may contain. `NodeConfigSchema.parse({})` is a working development node (embedded anvil chain,
 * admin API on 127.0.0.1:8080, private webhook targets allowed); `config/default.yaml` writes those
 * defaults out with comments, `config/production.example.yaml` shows what production changes.
 *
 * Conventions:
 * - Objects are strict: an unknown key (a typo such as `admin.prot`) is an error, never ignored.
 * - Every duration field (`...Ms`, `retry.scheduleMs`) takes milliseconds or a string with a unit
 *   (`"10s"`, `"5m"`, `"2h"`); the parsed config always holds milliseconds.
 * - Every setting lands here, typed and defaulted; a section holds only what its module reads.
 * - A key is named like the module option it fills (`deliverer.circuitBreaker.cooldownMs` is the
 *   breaker's `cooldownMs`), so what maps a section onto a module's options is a spread, not a rename.
 * - A default a module has of its own is not written here: the schema reads it from the module's exported
 *   constant (`DEFAULT_BREAKER_CONFIG`, `DEFAULT_CELL`, ...), so the module header, a test building the
 *   module without options and a node started with no config all mean the same value. Only settings no
 *   module defaults (ports, hosts, limits the config alone decides) have their value written here.
 *   test/unit/config-defaults.test.ts checks that the options built from the default config equal the
 *   modules' own defaults.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { MAX_WINDOW_SIZE } from '../actors/deliverer/call-window.ts';
import { DEFAULT_BREAKER_CONFIG } from '../actors/deliverer/circuit-breaker.ts';
import { DEFAULT_DISABLE_CONFIG } from '../actors/deliverer/disable.ts';
import { DEFAULT_HTTP_CLIENT_OPTIONS } from '../actors/deliverer/http-client.ts';
import { DEFAULT_RETRY_POLICY } from '../actors/deliverer/retry.ts';
import { DEFAULT_BACKFILL_OPTIONS } from '../actors/backfill/options.ts';
import { DEFAULT_SCHEDULER_OPTIONS } from '../actors/deliverer/scheduler.ts';
import { DEFAULT_DEV_CHAIN_OPTIONS } from '../dev-chain/index.ts';
import { DEFAULT_CELL, DEFAULT_SHUTDOWN_DEADLINE_MS } from '../runtime/system.ts';
import { DEFAULT_ROTATION_OVERLAP_MS } from '../store/endpoints.ts';
import { DEFAULT_PG_POOL_OPTIONS, PG_SCHEMA_NAME } from '../store/postgres/pool.ts';
import { DEFAULT_BACKOFF } from '../supervision/backoff.ts';
import { DEFAULT_INTENSITY } from '../supervision/supervisor.ts';
import { chainConfigSchema } from './chain.ts';
import { duration } from './duration.ts';
import { DEFAULT_CLUSTER_TIMING } from '../cluster/coordinator.ts';

const positiveInt = () => z.number().int().positive();
const nonNegativeInt = () => z.number().int().nonnegative();
const fraction = () => z.number().min(0).max(1);
const urlWithScheme = (schemes: RegExp, hint: string) =>
  z.url({ protocol: schemes, error: (issue) => (issue.input === undefined ? 'required' : `must be a ${hint} URL`) });

/** Hostname-derived id: in Kubernetes, the pod's name. It names the instance in its cluster and owns its outbox claims. */
function defaultNodeId(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 64) || 'ethhook'
  );
}

const ClusterSchema = z
  .strictObject({
    /**
     * A lease (a chain's ingestion, governance) not renewed for this long is free for another instance;
     * an instance whose heartbeat is older is not counted live. Also how long a dead instance's chains
     * wait for a new ingesting instance.
     */
    leaseMs: duration().default(DEFAULT_CLUSTER_TIMING.leaseMs),
    /** Heartbeat, lease renewal and lease taking period. */
    heartbeatMs: duration().default(DEFAULT_CLUSTER_TIMING.heartbeatMs),
  })
  .refine((c) => c.heartbeatMs > 0 && c.heartbeatMs * 2 <= c.leaseMs, {
    message: 'must be above 0 and at most half of leaseMs (a lease is renewed at least twice before it expires)',
    path: ['heartbeatMs'],
  });

const NodeSchema = z.strictObject({
  /** Names this instance in logs and metrics. Default: the hostname. */
  id: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -')
    .default(defaultNodeId),
  /** LevelDB store and generated files (the dev admin token). Relative paths are from the working directory. */
  dataDir: z.string().min(1).default('./data'),
  /** SIGTERM/SIGINT: the whole tree must be stopped within this, else the process exits non-zero anyway. */
  shutdownDeadlineMs: duration().default(DEFAULT_SHUTDOWN_DEADLINE_MS),
});

const LogSchema = z.strictObject({
  /** pino level; `silent` turns logging off. */
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export const ADMIN_ROLES = ['read', 'operate'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

const AdminTokenSchema = z.strictObject({
  /** The bearer secret: at least 16 visible ASCII characters (`openssl rand -hex 32` makes a good one). */
  token: z
    .string()
    .min(16, 'must be at least 16 characters')
    .regex(/^[\x21-\x7e]+$/, 'must be visible ASCII without spaces'),
  /** `read`: health, metrics, the actor tree. `operate`: also restart/stop/start actors. */
  role: z.enum(ADMIN_ROLES),
});

const AdminSchema = z.strictObject({
  /** Interface to bind. Keep it on loopback unless a proxy or network policy guards the port. */
  host: z.string().min(1).default('127.0.0.1'),
  /** TCP port; 0 picks a free one (tests). */
  port: z.number().int().min(0).max(65_535).default(8080),
  /**
   * Bearer tokens and their roles. Empty: at start the node generates one `operate` token, writes it to
   * `<dataDir>/admin-token` (mode 0600, reused on later starts) and logs that it did, masked.
   */
  tokens: z
    .array(AdminTokenSchema)
    .default([])
    .refine((tokens) => new Set(tokens.map((t) => t.token)).size === tokens.length, 'the same token is listed twice'),
  /** Browser origins allowed to call the API (`https://ops.example.com`, or `*`). Empty: no CORS headers. */
  corsOrigins: z.array(z.string().min(1)).default([]),
  /** Request bodies above this are refused with 413. */
  maxBodyBytes: positiveInt().default(64 * 1024),
  /** A request (headers and body) must arrive within this, else the connection is closed. */
  requestTimeoutMs: duration().default(30_000),
});

const MailboxSchema = z.strictObject({
  /** Messages a mailbox holds before its overflow policy applies. */
  capacity: positiveInt().default(DEFAULT_CELL.capacity),
  /** `backpressure`: senders are told it is full / wait. `drop-oldest`, `drop-newest`: to dead letters. */
  overflow: z.enum(['backpressure', 'drop-oldest', 'drop-newest']).default(DEFAULT_CELL.overflow),
  /** Messages an actor handles per turn before yielding to the others and to I/O. */
  throughput: positiveInt().default(DEFAULT_CELL.throughput),
});

const ActorOverrideSchema = z.strictObject({
  mailbox: MailboxSchema.partial().optional(),
  /** `local` (in this process), or through comedy in a child process (`forked`) or a worker thread. */
  placement: z.enum(['local', 'forked', 'threaded']).optional(),
  /** How long the actor gets to stop before it is abandoned. */
  shutdownTimeoutMs: duration().optional(),
});

const BackoffSchema = z
  .strictObject({
    minMs: duration().default(DEFAULT_BACKOFF.minMs),
    maxMs: duration().default(DEFAULT_BACKOFF.maxMs),
    /** Each consecutive restart waits `factor` times longer, up to maxMs. */
    factor: z.number().min(1).default(DEFAULT_BACKOFF.factor),
    /** 0..1: the delay is drawn from [d*(1-jitter), d*(1+jitter)]. */
    jitter: fraction().default(DEFAULT_BACKOFF.jitter),
    /** After this long without a failure, the next restart waits minMs again. */
    resetAfterMs: duration().default(DEFAULT_BACKOFF.resetAfterMs),
  })
  .refine((b) => b.minMs <= b.maxMs, { message: 'minMs must not exceed maxMs', path: ['minMs'] });

const SupervisionSchema = z.strictObject({
  /** More than maxRestarts within withinMs: the supervisor gives up and escalates to its parent. */
  intensity: z
    .strictObject({
      maxRestarts: nonNegativeInt().default(DEFAULT_INTENSITY.maxRestarts),
      withinMs: duration().default(DEFAULT_INTENSITY.withinMs),
    })
    .prefault({}),
  backoff: BackoffSchema.prefault({}),
});

const RuntimeSchema = z.strictObject({
  /** Mailbox of every actor without an override. */
  mailbox: MailboxSchema.prefault({}),
  /** A message that panics the same actor this many times in a row goes to dead letters. */
  maxConsecutivePanics: positiveInt().default(DEFAULT_CELL.maxConsecutivePanics),
  /** Default time an actor gets to stop. */
  shutdownTimeoutMs: duration().default(DEFAULT_CELL.shutdownTimeoutMs),
  /** Per-actor overrides by actor name (`deliverer`, `matcher`, `chain-listener:1`). */
  actors: z.record(z.string().min(1), ActorOverrideSchema).default({}),
  supervision: SupervisionSchema.prefault({}),
});

/** One followed chain: the schema lives with the rest of the configuration in chain.ts. */
const ChainSchema = chainConfigSchema;

const DevChainSchema = z.strictObject({
  /** Start an embedded anvil and follow it (the dev node). Turn off when real chains are configured. */
  enabled: z.boolean().default(true),
  chainId: positiveInt().default(DEFAULT_DEV_CHAIN_OPTIONS.chainId),
  /** anvil's interval mining period. */
  blockTimeMs: duration().default(DEFAULT_DEV_CHAIN_OPTIONS.blockTimeMs),
  /** Period of the built-in traffic generator's transactions (so a dev node sees events); 0 disables it. */
  txIntervalMs: duration().default(DEFAULT_DEV_CHAIN_OPTIONS.txIntervalMs),
  /** Port anvil listens on (127.0.0.1); 0 picks a free one. */
  port: z.number().int().min(0).max(65_535).default(DEFAULT_DEV_CHAIN_OPTIONS.port),
  /** anvil executable. Default: the one installed by the optional dependency @foundry-rs/anvil-linux-amd64. */
  binary: z.string().min(1).optional(),
});

const DemoSchema = z.strictObject({
  /**
   * With the dev chain only (it does nothing when `devChain` is off or chains are configured, and it
   * stays out of the way of a configured `governance.url`): a built-in webhook receiver on loopback
   * that verifies every signature, and a local governance server that feeds the node the demo endpoint
   * and its subscription to the dev contract's Tick events as signed messages.
   */
  enabled: z.boolean().default(true),
  /** While the demo runs: a `"msg":"status"` log line this often (heights, matches, deliveries, mailboxes); 0: none. */
  statusIntervalMs: duration().default(5_000),
});

/** The Deliverer's settings: src/actors/deliverer/settings.ts hands them to its scheduler, HTTP client and guards. */
const DelivererSchema = z.strictObject({
  /** Webhook requests in the fast lane across all endpoints (src/actors/deliverer/scheduler.ts). */
  concurrency: positiveInt().default(DEFAULT_SCHEDULER_OPTIONS.concurrency),
  /** Requests one endpoint may have in flight at once: one endpoint gets at most an eighth of the fast lane. */
  perEndpointConcurrency: positiveInt().default(DEFAULT_SCHEDULER_OPTIONS.perEndpointConcurrency),
  /** Requests of slow endpoints started at once; those we have no answer from hold at most half. */
  slowConcurrency: positiveInt().default(DEFAULT_SCHEDULER_OPTIONS.slowConcurrency),
  /** A request unanswered this long leaves the fast lane, and its endpoint is slow until one ends sooner. */
  slowAfterMs: duration().default(DEFAULT_SCHEDULER_OPTIONS.slowAfterMs),
  /** One webhook request (connect to last byte) must finish within this. */
  requestTimeoutMs: duration().default(DEFAULT_HTTP_CLIENT_OPTIONS.requestTimeoutMs),
  retry: z
    .strictObject({
      /** Wait before each attempt (the first is attempt 1); after the last, the job is dead-lettered. */
      scheduleMs: z
        .array(duration())
        .min(1)
        .default([...DEFAULT_RETRY_POLICY.scheduleMs]),
      /** 0..1 (1 excluded): each wait is drawn from [w*(1-jitter), w*(1+jitter)]. */
      jitter: z.number().min(0).lt(1).default(DEFAULT_RETRY_POLICY.jitter),
      /** A receiver's `Retry-After` is honoured up to this long. */
      maxRetryAfterMs: duration().default(DEFAULT_RETRY_POLICY.maxRetryAfterMs),
    })
    .prefault({}),
  /** An endpoint's breaker opens on a failure rate over a window of calls, or on consecutive failures (circuit-breaker.ts). */
  circuitBreaker: z
    .strictObject({
      /** Consecutive failures that open it (a total outage of an endpoint with little traffic). */
      failureThreshold: positiveInt().default(DEFAULT_BREAKER_CONFIG.failureThreshold),
      /** Percent of failed calls in the window, once it holds `minimumNumberOfCalls`, that opens it. */
      failureRateThreshold: z.number().gt(0).max(100).default(DEFAULT_BREAKER_CONFIG.failureRateThreshold),
      /** `count`: the last `slidingWindowSize` calls; `time`: the calls of the last `slidingWindowSize` seconds. */
      slidingWindowType: z.enum(['count', 'time']).default(DEFAULT_BREAKER_CONFIG.slidingWindowType),
      /** Calls (count, at most 10,000) or seconds (time, at most 600): bounds each endpoint's window. */
      slidingWindowSize: positiveInt().default(DEFAULT_BREAKER_CONFIG.slidingWindowSize),
      /** Calls the window must hold before its failure rate counts (above a count window's size: never). */
      minimumNumberOfCalls: positiveInt().default(DEFAULT_BREAKER_CONFIG.minimumNumberOfCalls),
      /** How long it stays open before a trial request (longer after each failed trial). */
      cooldownMs: duration().default(DEFAULT_BREAKER_CONFIG.cooldownMs),
    })
    .refine((b) => b.slidingWindowSize <= MAX_WINDOW_SIZE[b.slidingWindowType], {
      message: `must be at most ${MAX_WINDOW_SIZE.count} calls (count) or ${MAX_WINDOW_SIZE.time} seconds (time)`,
      path: ['slidingWindowSize'],
    })
    .prefault({}),
  /** An endpoint failing for this long without a success (and at least `minFailures` times) is disabled. */
  disable: z
    .strictObject({
      afterMs: duration().default(DEFAULT_DISABLE_CONFIG.afterMs),
      minFailures: positiveInt().default(DEFAULT_DISABLE_CONFIG.minFailures),
    })
    .prefault({}),
});

/**
 * Where the node keeps its state. `level` (default): LevelDB under `node.dataDir`. `postgres`: a
 * PostgreSQL (15 or later) database shared by every instance that names it; the node applies pending
 * migrations at start (`ethhook store migrate --dry-run` shows them).
 */
const StoreSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('level') }),
    z.strictObject({
      kind: z.literal('postgres'),
      /** `postgres://user:password@host:5432/database` (also ETHHOOK_STORE__URL); the password is never logged or printed. */
      url: urlWithScheme(/^postgres(ql)?$/, 'postgres:// or postgresql://'),
      /** Connections this node opens at most. */
      poolSize: positiveInt().default(DEFAULT_PG_POOL_OPTIONS.poolSize),
      /** The schema holding the node's tables (created by the migrations): lower-case letters, digits, `_`. */
      schema: z
        .string()
        .regex(PG_SCHEMA_NAME, 'must be a lower-case SQL identifier (a-z, 0-9, _; not starting with a digit; at most 63)')
        .default(DEFAULT_PG_POOL_OPTIONS.schema),
      /** A statement running longer is cancelled and retried (never turned into a failed delivery). */
      statementTimeoutMs: duration().default(DEFAULT_PG_POOL_OPTIONS.statementTimeoutMs),
    }),
  ],
  { error: (issue) => (issue.code === 'invalid_union' ? "kind must be 'level' or 'postgres'" : undefined) },
);

const GovernanceSchema = z
  .strictObject({
    /** ws:// or wss:// endpoint of the governance stream. Absent: no governance stream is started. */
    url: urlWithScheme(/^wss?$/, 'ws:// or wss://').optional(),
    /** Ed25519 public keys (PEM or base64 DER) whose signatures are accepted. */
    publicKeys: z.array(z.string().min(1)).default([]),
    reconnect: z.strictObject({ minMs: duration().default(1_000), maxMs: duration().default(60_000) }).prefault({}),
  })
  .refine((g) => g.url === undefined || g.publicKeys.length > 0, {
    message: 'a governance url needs at least one public key to verify messages',
    path: ['publicKeys'],
  });

const StreamsSchema = z.strictObject({
  /** Concurrent `/v1/ws/events` clients; more are refused. */
  maxWebsocketConnections: nonNegativeInt().default(1_000),
  /** Concurrent `/v1/sse/events` clients; more are refused. */
  maxSseConnections: nonNegativeInt().default(1_000),
  /** Idle connections get a ping/comment this often, so proxies keep them open. */
  heartbeatMs: duration().default(15_000),
});

/** History backfills and replays (src/actors/backfill/options.ts has each option's meaning). */
const BackfillSchema = z.strictObject({
  blocksPerSec: z.number().positive().max(1e9).default(DEFAULT_BACKFILL_OPTIONS.blocksPerSec),
  requestsPerSec: z.number().positive().max(1e6).default(DEFAULT_BACKFILL_OPTIONS.requestsPerSec),
  logsPerSec: z.number().positive().max(1e9).default(DEFAULT_BACKFILL_OPTIONS.logsPerSec),
  maxRunning: z.number().int().min(1).max(1_000).default(DEFAULT_BACKFILL_OPTIONS.maxRunning),
  pollMs: duration().default(DEFAULT_BACKFILL_OPTIONS.pollMs),
  maxOutboxDepth: z.number().int().min(1).default(DEFAULT_BACKFILL_OPTIONS.maxOutboxDepth),
  pageLogs: z.number().int().min(1).max(1_000_000).default(DEFAULT_BACKFILL_OPTIONS.pageLogs),
});

const SecuritySchema = z.strictObject({
  /**
   * Allow webhook targets that resolve to private, loopback or link-local addresses. On in the dev
   * default (receivers run on localhost); off in production (SSRF protection).
   */
  allowPrivateTargets: z.boolean().default(true),
  /** Refuse plain http:// webhook targets. */
  requireHttpsTargets: z.boolean().default(false),
  /**
   * Without ETHHOOK_MASTER_KEY, generate a master key into `<dataDir>/master.key` (with a loud warning)
   * instead of refusing to start. On in the dev default; off in production, where the key comes from
   * the environment (a secret manager) and a missing one is an error.
   */
  generateMasterKey: z.boolean().default(true),
  /** After a secret rotation (admin API or governance) the old secret keeps signing this long too. */
  secretOverlapMs: duration().default(DEFAULT_ROTATION_OVERLAP_MS),
});

export const NodeConfigSchema = z
  .strictObject({
    node: NodeSchema.prefault({}),
    store: StoreSchema.default({ kind: 'level' }),
    /** Instances sharing a PostgreSQL store form a cluster (src/cluster/coordinator.ts). */
    cluster: ClusterSchema.prefault({}),
    log: LogSchema.prefault({}),
    admin: AdminSchema.prefault({}),
    runtime: RuntimeSchema.prefault({}),
    /** Chains this node follows. Empty plus `devChain.enabled`: the node follows its embedded anvil. */
    chains: z.array(ChainSchema).default([]),
    devChain: DevChainSchema.prefault({}),
    demo: DemoSchema.prefault({}),
    deliverer: DelivererSchema.prefault({}),
    governance: GovernanceSchema.prefault({}),
    streams: StreamsSchema.prefault({}),
    backfill: BackfillSchema.prefault({}),
    security: SecuritySchema.prefault({}),
  })
  .superRefine((config, ctx) => {
    const ids = new Set<number>();
    const names = new Set<string>();
    config.chains.forEach((chain, i) => {
      if (ids.has(chain.chainId))
        ctx.addIssue({ code: 'custom', path: ['chains', i, 'chainId'], message: `chainId ${chain.chainId} is listed twice` });
      if (names.has(chain.name))
        ctx.addIssue({ code: 'custom', path: ['chains', i, 'name'], message: `chain name "${chain.name}" is listed twice` });
      ids.add(chain.chainId);
      names.add(chain.name);
    });
    if (config.devChain.enabled && ids.has(config.devChain.chainId)) {
      ctx.addIssue({
        code: 'custom',
        path: ['devChain', 'chainId'],
        message: `the dev chain's chainId ${config.devChain.chainId} is also a configured chain; disable devChain or change one`,
      });
    }
  });

export type NodeConfig = z.infer<typeof NodeConfigSchema>;
/** What a config file may contain before defaults and duration parsing. */
export type NodeConfigInput = z.input<typeof NodeConfigSchema>;
export type ChainConfig = NodeConfig['chains'][number];
export type AdminConfig = NodeConfig['admin'];
export type StoreConfig = NodeConfig['store'];
export type AdminTokenConfig = AdminConfig['tokens'][number];

/** The dev node's configuration: every default, nothing from a file or the environment. */
export function defaultConfig(): NodeConfig {
  return NodeConfigSchema.parse({});
}
