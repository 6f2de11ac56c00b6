/**
 * CPU time from /proc, for the benchmarks' accounting of where a machine's cores went: a process's own
 * (all its threads), one thread's time on a core and waiting for one, and the whole machine's, busy and
 * total.
 */
import { readFileSync } from 'node:fs';

/** Linux's USER_HZ, the unit of /proc's CPU times. */
const CLOCK_TICKS = 100;

/** utime + stime of the process (fields 14 and 15 of /proc/<pid>/stat, after the command's parenthesis), in seconds; null once it is gone. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** The machine's CPU seconds since boot, summed over its cores (the `cpu` line of /proc/stat): busy, and busy + idle + iowait. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = ticks[3]! + ticks[4]!;
  return { busy: (total - idle) / CLOCK_TICKS, total: total / CLOCK_TICKS };
}

/**
 * A thread's time on a core and its time runnable but waiting for one, in seconds: the first two fields
 * of /proc/<pid>/task/<tid>/schedstat (ns). `tid` defaults to the process's main thread. Null once the
 * thread is gone, or when the kernel keeps no such statistics.
 */
export function threadSchedSeconds(pid: number, tid = pid): { run: number; wait: number } | null {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
    return run === undefined || wait === undefined || !Number.isFinite(run) || !Number.isFinite(wait)
      ? null
      : { run: run / 1e9, wait: wait / 1e9 };
  } catch {
    return null;
  }
}
