/**
 * @module Rates from a counter sampled once per tick, for the direct-scrape path (Prometheus does the
 * same with `rate()` on the PromQL path). A window keeps the samples of the last `windowSeconds`;
 * the increase across them adds every step and treats a drop as a counter reset (the process
 * restarted and counts again from zero), as Prometheus does.
 *
 * Worked example: samples (t=0, 100), (t=15, 160), (t=30, 20) after a restart. Increase =
 * (160 - 100) + 20 = 80 over 30 s, so the rate is 2.67/s. A window with a single sample has no rate:
 * `undefined`, never 0.
 *
 * Unlike Prometheus' `rate()` the result is not extrapolated to the window edges: for a counter that
 * grows steadily both give the same figure, and the integration test checks that they agree.
 */

interface Point {
  readonly t: number;
  readonly v: number;
}

export interface WindowIncrease {
  readonly increase: number;
  readonly seconds: number;
}

export class CounterWindow {
  private points: Point[] = [];
  private readonly windowSeconds: number;

  constructor(windowSeconds: number) {
    this.windowSeconds = windowSeconds;
  }

  /** Adds a sample; samples at or before the newest one are ignored (a repeated or clock-skewed tick). */
  push(tSeconds: number, value: number): void {
    if (!Number.isFinite(value) || value < 0) return;
    const last = this.points[this.points.length - 1];
    if (last !== undefined && tSeconds <= last.t) return;
    this.points.push({ t: tSeconds, v: value });
    const oldest = tSeconds - this.windowSeconds;
    let drop = 0;
    while (drop < this.points.length && (this.points[drop] as Point).t < oldest) drop++;
    if (drop > 0) this.points = this.points.slice(drop);
  }

  get size(): number {
    return this.points.length;
  }

  get newestSeconds(): number | undefined {
    return this.points[this.points.length - 1]?.t;
  }

  increase(): WindowIncrease | undefined {
    const points = this.points;
    if (points.length < 2) return undefined;
    let increase = 0;
    for (let i = 1; i < points.length; i++) {
      const previous = (points[i - 1] as Point).v;
      const current = (points[i] as Point).v;
      increase += current >= previous ? current - previous : current;
    }
    const seconds = (points[points.length - 1] as Point).t - (points[0] as Point).t;
    return { increase, seconds };
  }

  /** Per-second rate over the window; undefined until two samples exist. */
  rate(): number | undefined {
    const w = this.increase();
    return w === undefined || w.seconds <= 0 ? undefined : w.increase / w.seconds;
  }
}
