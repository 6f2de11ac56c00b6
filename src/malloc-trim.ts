/**
 * Gives the memory the C allocator keeps back to the system.
 *
 * The node's native parts (LevelDB's blocks, values and compactions, Buffers, sockets) allocate and free
 * through glibc's malloc, which keeps freed memory in its arenas: it returns only the free top of a heap,
 * never the free pages between live chunks, until `malloc_trim` is called. Node does not call it. On a
 * 1,000,000-job backlog draining, one malloc_trim(0) took the node's anonymous RSS from 211 to 107 MB:
 * half of it was memory already freed.
 *
 * `startMallocTrim` checks the RSS every INTERVAL_MS; above RSS_THRESHOLD_BYTES it calls malloc_trim(0)
 * on koffi's worker thread (an FFI library with prebuilt binaries: Node has no way to call a libc
 * function itself), so the event loop does not wait the ~10 ms a trim of a few hundred MB takes. koffi
 * is loaded at the first trim only: an idle node never pays its ~6 MB. Linux with glibc only; where
 * libc.so.6 or malloc_trim is missing (musl, macOS, Windows) it logs that once and stops.
 *
 * Memory: one timer and, once loaded, the FFI binding.
 */
import { createRequire } from 'node:module';
import type { Logger } from './runtime/log.ts';

export const INTERVAL_MS = 5_000;
/** Below this RSS nothing is trimmed (an idle node is about 80 MB). */
export const RSS_THRESHOLD_BYTES = 120 * 1024 * 1024;

type Trim = { async(pad: number, done: (err: unknown, result: number) => void): void };

export interface MallocTrim {
  /** Trims now (the timer does it on its own); resolves with the RSS freed, in bytes, or null when unavailable. */
  trimNow(): Promise<number | null>;
  stop(): void;
}

export function startMallocTrim(log: Logger): MallocTrim {
  let trim: Trim | null | undefined;
  let running = false;
  const load = (): Trim | null => {
    if (trim !== undefined) return trim;
    try {
      if (process.platform !== 'linux') throw new Error(`not on Linux (${process.platform})`);
      const koffi = createRequire(import.meta.url)('koffi') as { load(path: string): { func(signature: string): Trim } };
      trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)');
    } catch (err) {
      trim = null;
      log.info({ why: (err as Error).message }, 'malloc_trim unavailable: freed native memory stays with the allocator');
    }
    return trim;
  };
  const trimNow = (): Promise<number | null> => {
    const fn = load();
    if (fn === null || running) return Promise.resolve(null);
    running = true;
    const before = process.memoryUsage.rss();
    return new Promise((resolve) => {
      fn.async(0, (err) => {
        running = false;
        if (err) {
          log.warn({ err: (err as Error).message }, 'malloc_trim failed');
          return resolve(null);
        }
        const freed = before - process.memoryUsage.rss();
        log.debug({ freedMb: Math.round(freed / 1048576) }, 'malloc_trim');
        resolve(freed);
      });
    });
  };
  const timer = setInterval(() => {
    if (trim !== null && process.memoryUsage.rss() > RSS_THRESHOLD_BYTES) void trimNow();
  }, INTERVAL_MS);
  timer.unref();
  return { trimNow, stop: () => clearInterval(timer) };
}
