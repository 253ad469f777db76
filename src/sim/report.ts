import type { PolicyName } from './policies.ts';
import type { RunResult, TimelinePoint } from './simulation.ts';

/**
 * Per-policy outcome of a run: SLO attainment, latency percentiles, preemptions, replica-minutes,
 * GPU-hours and cost. Field names follow DESIGN.md's `tokenscaler simulate --json` contract.
 */

export interface SloTargets {
  /** A request meets the SLO when its time to first token is at most this... */
  ttftSeconds: number;
  /** ...and its mean time per output token after the first is at most this. */
  tpotSeconds: number;
}

export interface PolicySummary {
  name: PolicyName;
  /** The policy's knobs as run (targets, thresholds), and whether they were tuned. */
  settings: Record<string, number | string | boolean>;
  /** Share of requests that completed within both SLO targets (0..1); failed requests miss. */
  sloAttainment: number;
  gpuHours: number;
  /** gpuHours / the oracle's gpuHours; undefined when the oracle was not run. */
  gpuHoursVsOracle?: number;
  costUsd: number;
  replicaMinutes: number;
  meanReplicas: number;
  peakReplicas: number;
  /** Latency percentiles over completed requests; null when none completed (or none had 2+ tokens). */
  ttftP50Seconds: number | null;
  ttftP95Seconds: number | null;
  ttftP99Seconds: number | null;
  tpotP50Seconds: number | null;
  tpotP95Seconds: number | null;
  tpotP99Seconds: number | null;
  preemptions: number;
  requests: number;
  completed: number;
  /** Rejected (too long for one replica) plus aborted (drain grace ran out, or never finished). */
  failed: number;
  scaleEvents: number;
  /** Seconds simulated, from t = 0 until the last request finished. */
  simulatedSeconds: number;
  /** Wall-clock seconds the simulation took. */
  wallSeconds: number;
}

export interface PolicyRun {
  summary: PolicySummary;
  timeline: TimelinePoint[];
  /** Arrival times of every request, and of those that missed the SLO (for the plot). */
  arrivals: Float64Array;
  missArrivals: Float64Array;
}

export function summarize(
  name: PolicyName,
  settings: PolicySummary['settings'],
  run: RunResult,
  slo: SloTargets,
  gpusPerReplica: number,
  gpuHourCostUsd: number,
  wallSeconds: number,
): PolicyRun {
  const ttft = new Float64Array(run.requests.length);
  const tpot = new Float64Array(run.requests.length);
  let ttftCount = 0;
  let tpotCount = 0;
  const misses: number[] = [];
  let met = 0;
  let completed = 0;
  for (const r of run.requests) {
    if (r.phase !== 'done') {
      misses.push(r.arrivalSeconds);
      continue;
    }
    completed++;
    const first = r.firstTokenSeconds - r.arrivalSeconds;
    ttft[ttftCount++] = first;
    let ok = first <= slo.ttftSeconds;
    if (r.outputTokens > 1) {
      const perToken = (r.finishedSeconds - r.firstTokenSeconds) / (r.outputTokens - 1);
      tpot[tpotCount++] = perToken;
      ok = ok && perToken <= slo.tpotSeconds;
    }
    if (ok) met++;
    else misses.push(r.arrivalSeconds);
  }
  // Typed-array sort is numeric and much faster than a comparator over boxed numbers.
  const ttftSorted = ttft.subarray(0, ttftCount).sort();
  const tpotSorted = tpot.subarray(0, tpotCount).sort();
  const requests = run.requests.length;
  const replicaHours = run.replicaSeconds / 3600;
  const gpuHours = replicaHours * gpusPerReplica;
  const summary: PolicySummary = {
    name,
    settings,
    sloAttainment: requests === 0 ? 1 : met / requests,
    gpuHours,
    costUsd: gpuHours * gpuHourCostUsd,
    replicaMinutes: run.replicaSeconds / 60,
    meanReplicas: run.endSeconds > 0 ? run.replicaSeconds / run.endSeconds : 0,
    peakReplicas: run.peakReplicas,
    ttftP50Seconds: quantile(ttftSorted, 0.5),
    ttftP95Seconds: quantile(ttftSorted, 0.95),
    ttftP99Seconds: quantile(ttftSorted, 0.99),
    tpotP50Seconds: quantile(tpotSorted, 0.5),
    tpotP95Seconds: quantile(tpotSorted, 0.95),
    tpotP99Seconds: quantile(tpotSorted, 0.99),
    preemptions: run.preemptions,
    requests,
    completed,
    failed: run.failed,
    scaleEvents: run.scaleEvents,
    simulatedSeconds: run.endSeconds,
    wallSeconds,
  };
  misses.sort((a, b) => a - b);
  return {
    summary,
    timeline: run.timeline,
    arrivals: Float64Array.from(run.requests, (r) => r.arrivalSeconds),
    missArrivals: Float64Array.from(misses),
  };
}

/** Nearest-rank quantile of a sorted list; null for an empty one (nothing measured is not zero). */
function quantile(sorted: Float64Array, q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}
