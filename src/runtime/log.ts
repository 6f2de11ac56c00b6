/**
 * Logging: pino JSON. Every actor logs through a child logger bound to its `actor` path, so every
 * line names the actor it came from. Secrets are redacted by key wherever they appear.
 */
import { createHash } from 'node:crypto';
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export const REDACTED_KEYS = [
  'token',
  'authorization',
  'secret',
  'secrets',
  'masterKey',
  'password',
  '*.token',
  '*.authorization',
  '*.secret',
  '*.secrets',
  '*.masterKey',
  '*.password',
  'headers.authorization',
  'req.headers.authorization',
];

export interface LogOptions {
  level?: LoggerOptions['level'];
  /** Where lines go; a pino destination or any writable stream. Defaults to stdout. */
  destination?: pino.DestinationStream;
}

export function createLogger(options: LogOptions = {}): Logger {
  const opts: LoggerOptions = {
    level: options.level ?? 'info',
    base: { pid: process.pid },
    redact: { paths: REDACTED_KEYS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

/** A child logger whose every line carries the actor path. */
export function actorLogger(parent: Logger, path: string): Logger {
  return parent.child({ actor: path });
}

/**
 * A secret as it may be shown: `sha256:` and the first 12 hex characters of its SHA-256, so operators
 * can tell keys apart (the admin API's audit lines show the first 8 of the same digest) without any
 * character of the secret itself.
 */
export function secretFingerprint(secret: string): string {
  return `sha256:${createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 12)}`;
}
