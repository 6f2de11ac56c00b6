/**
 * RestartIntensity: OTP's restart intensity. A supervisor may restart at most `maxRestarts` times
 * within any `withinMs` window; the restart that would make it `maxRestarts + 1` tells it to give up
 * and escalate. The record is a list of restart times; times older than the window fall out.
 */
import type { IntensitySpec } from '../runtime/types.ts';

export class RestartIntensity {
  private times: number[] = [];

  constructor(readonly spec: IntensitySpec) {}

  /** Records a restart at `now`; returns true when the intensity is exceeded (escalate instead). */
  record(now: number): boolean {
    const horizon = now - this.spec.withinMs;
    this.times = this.times.filter((t) => t > horizon);
    this.times.push(now);
    return this.times.length > this.spec.maxRestarts;
  }

  reset(): void {
    this.times = [];
  }
}
