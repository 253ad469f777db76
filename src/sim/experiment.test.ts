import { describe, expect, it } from 'vitest';
import { COST_BAND, matchCost } from './experiment.ts';
import type { PolicyRun } from './report.ts';

/** A fake peer: GPU-hours fall as the threshold rises; SLO attainment follows the GPU-hours. */
function fakeRun(gpuHours: number, sloAttainment: number): PolicyRun {
  return {
    summary: { gpuHours, sloAttainment } as PolicyRun['summary'],
    timeline: [],
    arrivals: new Float64Array(0),
    missArrivals: new Float64Array(0),
  };
}

describe('matchCost', () => {
  it('finds the threshold whose GPU-hours just reach the reference', () => {
    const tried: number[] = [];
    const run = matchCost(
      (threshold) => {
        tried.push(threshold);
        return fakeRun(1000 / threshold, Math.min(1, 10 / threshold));
      },
      1,
      [0.01, 1e4],
      100,
    );
    // 1000 / threshold >= 100 -> threshold <= 10; the cheapest such run spends close to 100 GPU-hours.
    expect(run.summary.gpuHours).toBeGreaterThanOrEqual(100);
    expect(run.summary.gpuHours).toBeLessThanOrEqual(100 * COST_BAND);
    expect(tried.length).toBeLessThan(20);
  });

  it('takes the best SLO within the cost band, not a degenerate setting that bills more by failing', () => {
    // GPU-hours are not monotone: a huge threshold overloads the fleet and the run lasts longer.
    const curve = (t: number) => (t > 50 ? fakeRun(101, 0.2) : fakeRun(1000 / t, t <= 10 ? 0.99 : 0.5));
    const run = matchCost(curve, 1, [0.01, 1e4], 100);
    expect(run.summary.sloAttainment).toBe(0.99);
  });

  it('falls back to the most expensive setting when none reaches the reference', () => {
    const run = matchCost((t) => fakeRun(10 / t, 1), 1, [0.5, 2], 100);
    expect(run.summary.gpuHours).toBe(20);
  });
});
