// One source for every default: the options the node builds from the default configuration are the
// options each module takes when given none, and every config key is the name of the option it fills.
// A literal written into the schema, a module default changed on its own, or a key mapped onto another
// option makes one of these fail.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BREAKER_CONFIG } from '../../src/actors/deliverer/circuit-breaker.ts';
import { DEFAULT_DISABLE_CONFIG } from '../../src/actors/deliverer/disable.ts';
import { DEFAULT_HTTP_CLIENT_OPTIONS } from '../../src/actors/deliverer/http-client.ts';
import { placedDelivererArgsSchema } from '../../src/actors/deliverer/placed.ts';
import { DEFAULT_RETRY_POLICY } from '../../src/actors/deliverer/retry.ts';
import { schedulerConfig } from '../../src/actors/deliverer/scheduler.ts';
import { delivererSettings } from '../../src/actors/deliverer/settings.ts';
import { DEFAULT_BACKFILL_OPTIONS } from '../../src/actors/backfill/options.ts';
import { NodeConfigSchema, defaultConfig } from '../../src/config/schema.ts';
import { DEFAULT_DEV_CHAIN_OPTIONS } from '../../src/dev-chain/index.ts';
import { DEFAULT_CELL, DEFAULT_SHUTDOWN_DEADLINE_MS } from '../../src/runtime/system.ts';
import { DEFAULT_ROTATION_OVERLAP_MS } from '../../src/store/endpoints.ts';
import { DEFAULT_PG_POOL_OPTIONS } from '../../src/store/postgres/pool.ts';
import { DEFAULT_BACKOFF, DEFAULT_INTENSITY } from '../../src/supervision/index.ts';
import { cellDefaults } from '../../src/tree.ts';

/** The part of `defaults` the configuration sets: its keys must all be options of the module. */
function configured<T extends object>(defaults: T, config: object): Partial<T> {
  for (const key of Object.keys(config)) expect(Object.keys(defaults), `config key ${key}`).toContain(key);
  return Object.fromEntries(Object.keys(config).map((k) => [k, defaults[k as keyof T]])) as Partial<T>;
}

describe('the default configuration builds each module with its own defaults', () => {
  const config = defaultConfig();

  it('deliverer: scheduler, HTTP client, retry policy, circuit breaker, disable', () => {
    const { http, loop } = delivererSettings(config);
    const { retry, guards, ...lanes } = loop;
    expect(schedulerConfig(lanes)).toEqual(schedulerConfig({}));
    expect(http.requestTimeoutMs).toBe(DEFAULT_HTTP_CLIENT_OPTIONS.requestTimeoutMs);
    expect(retry).toEqual(DEFAULT_RETRY_POLICY);
    expect(guards.circuitBreaker).toEqual(configured(DEFAULT_BREAKER_CONFIG, guards.circuitBreaker));
    expect(guards.disable).toEqual(configured(DEFAULT_DISABLE_CONFIG, guards.disable));
  });

  it("actor system: every actor's mailbox, panics and shutdown time", () => {
    expect(cellDefaults(config.runtime)).toEqual(DEFAULT_CELL);
    expect(config.node.shutdownDeadlineMs).toBe(DEFAULT_SHUTDOWN_DEADLINE_MS);
  });

  it('supervision: restart intensity and backoff', () => {
    expect(config.runtime.supervision).toEqual({ intensity: DEFAULT_INTENSITY, backoff: DEFAULT_BACKOFF });
  });

  it('dev chain', () => {
    const { enabled: _, ...options } = config.devChain;
    expect(options).toEqual(DEFAULT_DEV_CHAIN_OPTIONS);
  });

  it('PostgreSQL store: pool size, schema, statement timeout', () => {
    const store = NodeConfigSchema.parse({ store: { kind: 'postgres', url: 'postgres://db/x' } }).store;
    if (store.kind !== 'postgres') throw new Error('not a postgres store');
    const { kind: _, url: _url, ...options } = store;
    expect(options).toEqual(configured(DEFAULT_PG_POOL_OPTIONS, options));
  });

  it('secret rotation overlap', () => {
    expect(config.security.secretOverlapMs).toBe(DEFAULT_ROTATION_OVERLAP_MS);
  });

  it('backfill: pace, running backfills, poll, outbox depth', () => {
    expect(config.backfill).toEqual(DEFAULT_BACKFILL_OPTIONS);
  });
});

describe('config keys are the option names', () => {
  it('every deliverer setting reaches the option of its name, and the placed deliverer accepts them all', () => {
    const config = NodeConfigSchema.parse({
      deliverer: {
        concurrency: 3,
        perEndpointConcurrency: 2,
        slowConcurrency: 5,
        slowAfterMs: '2s',
        requestTimeoutMs: '7s',
        retry: { scheduleMs: [0, '1s'], jitter: 0.1, maxRetryAfterMs: '1m' },
        circuitBreaker: {
          failureThreshold: 9,
          failureRateThreshold: 25,
          slidingWindowType: 'time',
          slidingWindowSize: 30,
          minimumNumberOfCalls: 7,
          cooldownMs: '4s',
        },
        disable: { afterMs: '1h', minFailures: 4 },
      },
      security: { allowPrivateTargets: false },
    });
    const settings = delivererSettings(config);
    expect(settings).toEqual({
      http: { policy: { allowPrivate: false }, requestTimeoutMs: 7_000 },
      loop: {
        concurrency: 3,
        perEndpointConcurrency: 2,
        slowConcurrency: 5,
        slowAfterMs: 2_000,
        retry: { scheduleMs: [0, 1_000], jitter: 0.1, maxRetryAfterMs: 60_000 },
        guards: {
          circuitBreaker: {
            failureThreshold: 9,
            failureRateThreshold: 25,
            slidingWindowType: 'time',
            slidingWindowSize: 30,
            minimumNumberOfCalls: 7,
            cooldownMs: 4_000,
          },
          disable: { afterMs: 3_600_000, minFailures: 4 },
        },
      },
    });
    // Strict: a config key the Deliverer has no option for would be refused here.
    expect(placedDelivererArgsSchema.safeParse(settings).success).toBe(true);
  });

  it("the breaker's window is bounded: at most 10,000 calls or 600 seconds", () => {
    const breaker = (circuitBreaker: object) => NodeConfigSchema.safeParse({ deliverer: { circuitBreaker } });
    expect(breaker({ slidingWindowSize: 10_000 }).success).toBe(true);
    expect(breaker({ slidingWindowSize: 10_001 }).error?.issues[0]?.path).toEqual(['deliverer', 'circuitBreaker', 'slidingWindowSize']);
    expect(breaker({ slidingWindowType: 'time', slidingWindowSize: 600 }).success).toBe(true);
    expect(breaker({ slidingWindowType: 'time', slidingWindowSize: 601 }).success).toBe(false);
    expect(breaker({ failureRateThreshold: 0 }).success).toBe(false);
    expect(breaker({ failureRateThreshold: 101 }).success).toBe(false);
  });
});
