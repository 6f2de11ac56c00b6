/**
 * `runGovernanceServe(argv)`: the reference governance server's command line (the node's CLI exposes it
 * as `ethhook governance-serve`; it also runs directly: `node --import tsx src/governance-server/main.ts`).
 *
 *   --key FILE            Ed25519 private key (PEM PKCS#8) that signs new messages (required to serve)
 *   --key-id ID           the key's id; must be its fingerprint (checked), default: the fingerprint
 *   --host HOST           listen address (default 127.0.0.1)
 *   --port N              listen port (default 0: any free port; the log line says which)
 *   --log FILE            JSON-lines file of the message log (default: in memory)
 *   --publish-token-file FILE  enables POST /messages for the bearer token in FILE (publish.ts); a FILE
 *                         that does not exist is created with a new random token (mode 0600)
 *   --generate-key FILE   write a new key pair (FILE and FILE.pub), print its id and public key, exit
 *   --help
 *
 * Serving runs until SIGINT or SIGTERM, then closes and resolves 0. Exit codes: 0 ok, 1 the server
 * could not start (bad key, port in use, corrupt log), 2 usage errors. Logs are pino JSON on stdout;
 * the first line says where it listens (`"msg":"governance server listening"`, with `url`).
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { describeError, isEthhookError } from '../runtime/errors.ts';
import { createLogger } from '../runtime/log.ts';
import { readOrCreateTokenFile } from '../token-file.ts';
import { generateKeyFiles } from './keygen.ts';
import { startGovernanceServer } from './server.ts';

export const GOVERNANCE_SERVE_USAGE = `Usage: ethhook governance-serve --key FILE [--key-id ID] [--host HOST] [--port N] [--log FILE]
                                [--publish-token-file FILE]
       ethhook governance-serve --generate-key FILE

Runs the reference governance server: signs governance messages with an Ed25519 key and streams them
to nodes over WebSocket (docs/governance.md).

  --key FILE            Ed25519 private key, PEM PKCS#8
  --key-id ID           key id; must equal the key's fingerprint (default: the fingerprint)
  --host HOST           listen address (default 127.0.0.1)
  --port N              listen port (default 0: a free port)
  --log FILE            persist the message log as JSON lines in FILE
  --publish-token-file FILE
                        enable POST /messages (publish a message over HTTP) for the bearer
                        token in FILE (at least 16 characters); a FILE that does not exist is
                        created with a new random token, mode 0600
  --generate-key FILE   write a new key pair to FILE and FILE.pub, print the key id and public key
`;

const OPTIONS = {
  key: { type: 'string' },
  'key-id': { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  log: { type: 'string' },
  'publish-token-file': { type: 'string' },
  'generate-key': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const usage = (message: string): number => {
  process.stderr.write(`governance-serve: ${message}\n\n${GOVERNANCE_SERVE_USAGE}`);
  return 2;
};

export async function runGovernanceServe(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true }));
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(GOVERNANCE_SERVE_USAGE);
    return 0;
  }
  if (values['generate-key'] !== undefined) {
    if (values.key !== undefined) return usage('--generate-key and --key are exclusive');
    try {
      const made = await generateKeyFiles(values['generate-key']);
      process.stdout.write(
        `private key: ${made.privateKeyFile}\npublic key:  ${made.publicKeyFile}\nkey id:      ${made.keyId}\npublic key (governance.publicKeys): ${made.publicKey}\n`,
      );
      return 0;
    } catch (err) {
      process.stderr.write(`governance-serve: cannot write the key pair: ${(err as Error).message}\n`);
      return 1;
    }
  }
  if (values.key === undefined) return usage('--key FILE is required');
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) return usage(`--port must be an integer 0..65535 (got "${values.port}")`);

  let publishToken: string | undefined;
  if (values['publish-token-file'] !== undefined) {
    try {
      publishToken = (await readOrCreateTokenFile(values['publish-token-file'])).token;
    } catch (err) {
      process.stderr.write(`governance-serve: cannot read or create the publish token file: ${(err as Error).message}\n`);
      return 1;
    }
  }
  const logger = createLogger();
  let server;
  try {
    server = await startGovernanceServer({
      host: values.host ?? '127.0.0.1',
      port,
      keyFile: values.key,
      keyId: values['key-id'],
      store: values.log,
      publishToken,
      logger,
    });
  } catch (err) {
    logger.fatal({ err: describeError(err) }, 'governance server could not start');
    process.stderr.write(`governance-serve: ${isEthhookError(err) ? `${err.code}: ` : ''}${(err as Error).message}\n`);
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (s: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(s);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  logger.info({ signal }, 'governance server stopping');
  await server.close();
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runGovernanceServe(process.argv.slice(2));
}
