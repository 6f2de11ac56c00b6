/**
 * Runs an anvil process (npm `@foundry-rs/anvil-linux-amd64`, an optional dependency) on 127.0.0.1, on a
 * free port by default (`--port 0`; the port is read from anvil's "Listening on" line). Used by the embedded
 * dev chain and by the tests. `stop()` sends SIGTERM, then SIGKILL after 5 s.
 *
 * Lifetime. anvil runs in a process group of its own (`detached`), so the SIGINT a terminal sends to the
 * whole foreground group on Ctrl-C does not reach it: the node stops it itself, after the services that
 * use it. It still never outlives this process:
 * - an `exit` hook SIGKILLs it when this process exits without stop();
 * - a watchdog (`/bin/sh`, detached too) blocks reading a pipe from this process and SIGKILLs anvil when
 *   the pipe closes, which the kernel does however this process ends (a fatal signal, `kill -9`, a
 *   crash), where no hook of ours runs. Whenever we end anvil ourselves (stop, the exit hook) or anvil
 *   exits, the watchdog is killed first, so it can never signal a pid the system has reused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { EthhookError } from '../runtime/errors.ts';

const PACKAGE = '@foundry-rs/anvil-linux-amd64';
const START_TIMEOUT_MS = 30_000;

export interface AnvilProcess {
  port: number;
  pid: number;
  wsUrl: string;
  httpUrl: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** The anvil binary shipped by the optional dependency; a clear error when it is not installed. */
export function resolveAnvilBinary(): string {
  let bin: string | undefined;
  try {
    bin = join(dirname(createRequire(import.meta.url).resolve(`${PACKAGE}/package.json`)), 'bin', 'anvil');
  } catch {
    bin = undefined;
  }
  if (!bin || !existsSync(bin)) {
    throw new EthhookError(
      'ETHHOOK_ERR_DEV_CHAIN',
      `anvil is not installed: the dev chain needs the optional dependency ${PACKAGE} (linux x64); run npm install with optional dependencies, or disable devChain`,
      { package: PACKAGE, platform: `${process.platform}-${process.arch}` },
    );
  }
  return bin;
}

export interface SpawnOptions {
  /** Extra anvil arguments. */
  args?: readonly string[];
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Executable; default: resolveAnvilBinary(). */
  binary?: string;
}

export function spawnAnvil(options: SpawnOptions = {}): Promise<AnvilProcess> {
  const bin = options.binary ?? resolveAnvilBinary();
  const port = String(options.port ?? 0);
  const child = spawn(bin, ['--host', '127.0.0.1', '--port', port, ...(options.args ?? [])], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const watchdog = child.pid === undefined ? null : spawnWatchdog(child.pid);
  const killOnExit = () => {
    watchdog?.kill('SIGKILL');
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const watchdogExited = new Promise<void>((resolve) => (watchdog?.pid === undefined ? resolve() : watchdog.once('exit', () => resolve())));
  child.once('exit', () => watchdog?.kill('SIGKILL'));
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    watchdog?.kill('SIGKILL');
    await watchdogExited;
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    let output = '';
    let stderr = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      void stop();
      reject(new EthhookError('ETHHOOK_ERR_DEV_CHAIN', `anvil did not start: ${why}`, { stderr: stderr.slice(-500) }));
    };
    const timer = setTimeout(() => fail(`no "Listening on" line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    // Without its watchdog anvil could outlive us: then it does not run at all.
    if (watchdog && watchdog.pid === undefined) return fail('its watchdog (/bin/sh) could not be spawned');
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2_000);
    });
    const onError = (err: Error) => fail(err.message);
    const onEarlyExit = (code: number | null, signal: string | null) => fail(`exited (${code ?? signal})`);
    child.once('error', onError);
    child.once('exit', onEarlyExit);
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4_000);
      const m = /Listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', onEarlyExit);
      child.off('error', onError);
      child.on('error', () => {}); // a kill racing the exit must not throw
      child.stdout.off('data', onData);
      child.stdout.resume(); // keep draining anvil's request log so it never blocks on a full pipe
      const port = Number(m[1]);
      resolve({ port, pid: child.pid!, wsUrl: `ws://127.0.0.1:${port}`, httpUrl: `http://127.0.0.1:${port}`, child, stop });
    };
    child.stdout.on('data', onData);
  });
}

/** SIGKILLs `pid` once its stdin (a pipe whose other end only this process holds) reaches end of file. */
function spawnWatchdog(pid: number): ChildProcess {
  return spawn('/bin/sh', ['-c', 'read line; kill -KILL "$1" 2>/dev/null', 'anvil-watchdog', String(pid)], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  }).on('error', () => {}); // a failed spawn is seen by its missing pid
}
