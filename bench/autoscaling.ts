/**
 * Benchmark: autoscaling policies on real traces. Replays azure2023_code and azure2023_conv
 * (../shared/data/traces, Azure LLM inference trace 2023, CC-BY-4.0, Patel et al., "Splitwise",
 * ISCA 2024) against a simulated fleet of Llama-3.1-70B on 4 x H100 (TP 4) under every policy of
 * `tokenscaler simulate`, in one run:
 *
 * - the oracle: perfect foresight, the highest utilization that still meets the SLO goal (the
 *   reference for GPU-hours);
 * - tokenscaler with the TokenScaler spec defaults (plus the prefill rate of this model on this GPU);
 * - the peers (rps-hpa, concurrency, kv-utilization-hpa, queue-keda, static), each tuned so that it
 *   spends at least tokenscaler's GPU-hours, then compared on SLO attainment.
 *
 * The load multiplier of each trace is the smallest whole overlay (time-shifted copies) at which the
 * offered load needs at least 8 replicas on average at 80% utilization. The goal checked: tokenscaler
 * attains >= 99% of requests within the SLO with GPU-hours <= 1.15x the oracle's, and every peer, at
 * GPU-hours >= tokenscaler's, attains less. The benchmark reports what it measures, failures included.
 *
 * Speed is measured beside it: simulated hours per wall-clock second for every simulation run (the
 * physical yardstick is real time: the trace is one hour).
 *
 *   node bench/autoscaling.ts                      # both traces, table + one JSON line
 *   node bench/autoscaling.ts --traces azure2023_conv --out bench/out
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { findGpuPerformance } from '../src/capacity/gpu-performance.ts';
import { requireGpuPreset, requireModelPreset } from '../src/capacity/presets.ts';
import { offeredDemand } from '../src/sim/demand.ts';
import { percent, renderTable } from '../src/sim/output.ts';
import { renderHtml, renderSvg } from '../src/sim/plot.ts';
import {
  POLICY_NAMES,
  TOKENSCALER_HPA_BEHAVIOR,
  TOKENSCALER_RATE_WINDOW_SECONDS,
} from '../src/sim/policies.ts';
import { buildFleetModel, runScenario, type ScenarioInput } from '../src/sim/scenario.ts';
import { parseTraceCsv, shapeTrace } from '../src/sim/trace.ts';

const { values } = parseArgs({
  options: {
    traces: { type: 'string', default: 'azure2023_code,azure2023_conv' },
    'traces-dir': { type: 'string', default: resolve(import.meta.dirname, '../../shared/data/traces') },
    out: { type: 'string', default: resolve(import.meta.dirname, 'out') },
    seed: { type: 'string', default: '1' },
    'min-replicas-needed': { type: 'string', default: '8' },
  },
});

const seed = Number(values.seed);
const minNeeded = Number(values['min-replicas-needed']);
const model = requireModelPreset('llama-3.1-70b');
const gpu = requireGpuPreset('h100-80gb');
const gpuPerformance = findGpuPerformance(gpu.id);
if (gpuPerformance === undefined) throw new Error('h100-80gb has no roofline figures');

const fleetInput = {
  model,
  gpuLabel: gpu.id,
  capacityInput: {
    model,
    gpuMemoryGiB: gpu.memoryGiB,
    tensorParallel: 4,
    pipelineParallel: 1,
    kvCacheDtype: 'auto' as const,
    reservedGiB: 2,
    gpuMemoryUtilization: 0.9,
    blockSize: 16,
  },
  peakDenseTflopsPerGpu: gpuPerformance.peakDenseBf16Tflops,
  hbmBandwidthGBpsPerGpu: gpuPerformance.hbmBandwidthGBps,
  computeEfficiency: 0.6,
  memoryEfficiency: 0.8,
  stepOverheadSeconds: 0.004,
};
const fleet = buildFleetModel(fleetInput);
const slo = { ttftSeconds: 2, tpotSeconds: 0.2, goal: 0.99 };

interface TraceOutcome {
  trace: string;
  loadMultiplier: number;
  meanReplicasNeededAt80: number;
  description: string;
  requests: number;
  policies: ReturnType<typeof runScenario>['report']['policies'];
  goal: {
    tokenscalerSloAttainment: number;
    tokenscalerGpuHoursVsOracle: number | undefined;
    sloMet: boolean;
    costMet: boolean;
    peersBelow: Record<
      string,
      { sloAttainment: number; gpuHours: number; below: boolean; costMatched: boolean }
    >;
    met: boolean;
  };
  speed: { runs: number; simulatedHours: number; wallSeconds: number; simulatedHoursPerWallSecond: number };
  notes: string[];
}

mkdirSync(values.out, { recursive: true });
const outcomes: TraceOutcome[] = [];
const started = nowMs();
for (const name of values.traces.split(',').map((t) => t.trim())) {
  const file = parseTraceCsv(readFileSync(join(values['traces-dir'], `${name}.csv`), 'utf8'));
  // Smallest whole multiplier whose offered load needs >= minNeeded replicas on average at 80%.
  const base = shapeTrace(file, { name, loadMultiplier: 1, loadMethod: 'overlay', seed });
  const meanPrompt = base.requests.reduce((s, r) => s + r.inputTokens, 0) / base.requests.length;
  const prefillRate = fleet.stepModel.packedPrefillTokensPerSecond(
    fleet.engine.maxNumBatchedTokens,
    meanPrompt,
  );
  const demandAt1 = offeredDemand({
    requests: base.requests,
    tokensPerReplica: fleet.capacity.tokensPerReplica,
    prefillTokensPerSecondPerReplica: prefillRate,
    stepModel: fleet.stepModel,
    chunkTokens: fleet.engine.maxNumBatchedTokens,
    nominalDecodeBatch: 64,
    stepSeconds: 5,
    smoothingSeconds: 30,
  });
  const meanAt1 = demandAt1.replicas.reduce((s, v) => s + v, 0) / demandAt1.replicas.length / 0.8;
  const multiplier = Math.max(1, Math.ceil(minNeeded / meanAt1));
  const trace = shapeTrace(file, { name, loadMultiplier: multiplier, loadMethod: 'overlay', seed });
  process.stderr.write(
    `[${name}] x${multiplier} (${trace.requests.length} requests; ${(meanAt1 * multiplier).toFixed(1)} replicas needed on average at 80%)\n`,
  );
  const input: ScenarioInput = {
    ...fleetInput,
    trace,
    loadMultiplier: multiplier,
    loadMethod: 'overlay',
    seed,
    coldStartSeconds: 180,
    drainGraceSeconds: 600,
    scrapeIntervalSeconds: 5,
    hpaSyncSeconds: 15,
    minReplicas: 1,
    maxReplicas: 64,
    slo,
    gpuHourCostUsd: 2.5,
    policies: POLICY_NAMES,
    tokenscaler: {
      controllerIntervalSeconds: 5,
      rateWindowSeconds: TOKENSCALER_RATE_WINDOW_SECONDS,
      hpaBehavior: TOKENSCALER_HPA_BEHAVIOR,
    },
    peers: {},
    peerTuning: 'match-cost',
    onProgress: (message) => process.stderr.write(`[${name}] ${message}\n`),
  };
  const { report, result } = runScenario(input);
  writeFileSync(join(values.out, `autoscaling-${name}.svg`), renderSvg(report, result.runs, result.demand));
  writeFileSync(join(values.out, `autoscaling-${name}.html`), renderHtml(report, result.runs, result.demand));
  process.stdout.write(`\n== ${name} ==\n${renderTable(report)}`);

  const byName = new Map(report.policies.map((p) => [p.name, p]));
  const ts = byName.get('tokenscaler');
  if (ts === undefined) throw new Error('tokenscaler did not run');
  const peersBelow: TraceOutcome['goal']['peersBelow'] = {};
  for (const peer of ['rps-hpa', 'concurrency', 'kv-utilization-hpa', 'queue-keda', 'static'] as const) {
    const p = byName.get(peer);
    if (p === undefined) continue;
    peersBelow[peer] = {
      sloAttainment: p.sloAttainment,
      gpuHours: p.gpuHours,
      below: p.sloAttainment < ts.sloAttainment,
      costMatched: p.gpuHours >= ts.gpuHours,
    };
  }
  const sloMet = ts.sloAttainment >= slo.goal;
  const costMet = ts.gpuHoursVsOracle !== undefined && ts.gpuHoursVsOracle <= 1.15;
  const simulatedHours = result.simulations.reduce((s, r) => s + r.simulatedSeconds, 0) / 3600;
  const wallSeconds = result.simulations.reduce((s, r) => s + r.wallSeconds, 0);
  outcomes.push({
    trace: name,
    loadMultiplier: multiplier,
    meanReplicasNeededAt80: meanAt1 * multiplier,
    description: trace.description,
    requests: trace.requests.length,
    policies: report.policies,
    goal: {
      tokenscalerSloAttainment: ts.sloAttainment,
      tokenscalerGpuHoursVsOracle: ts.gpuHoursVsOracle,
      sloMet,
      costMet,
      peersBelow,
      met: sloMet && costMet && Object.values(peersBelow).every((p) => p.below && p.costMatched),
    },
    speed: {
      runs: result.simulations.length,
      simulatedHours,
      wallSeconds,
      simulatedHoursPerWallSecond: simulatedHours / wallSeconds,
    },
    notes: report.notes,
  });
}

process.stdout.write(
  '\n== goal: tokenscaler >= 99% SLO at <= 1.15x oracle GPU-hours; every cost-matched peer attains less ==\n',
);
const goalRows = outcomes.map((o) => {
  const peers = Object.entries(o.goal.peersBelow)
    .map(
      ([peer, p]) =>
        `${peer} ${percent(p.sloAttainment)}${p.below ? '' : ' (NOT below)'}${p.costMatched ? '' : ' (fewer GPU-h)'}`,
    )
    .join(', ');
  return `${o.trace.padEnd(16)} x${String(o.loadMultiplier).padEnd(3)} tokenscaler ${percent(o.goal.tokenscalerSloAttainment)} (${o.goal.sloMet ? 'meets' : 'MISSES'} 99%), ${o.goal.tokenscalerGpuHoursVsOracle?.toFixed(2) ?? '-'}x oracle (${o.goal.costMet ? 'within' : 'ABOVE'} 1.15x); peers: ${peers} -> ${o.goal.met ? 'GOAL MET' : 'goal not met'}`;
});
process.stdout.write(`${goalRows.join('\n')}\n`);

process.stdout.write('\n== speed (simulated time vs real time) ==\n');
for (const o of outcomes) {
  const perRun = o.speed.wallSeconds / o.speed.runs;
  process.stdout.write(
    `${o.trace.padEnd(16)} ${o.speed.runs} simulations of ${o.requests.toLocaleString('en-US')} requests: ${o.speed.simulatedHours.toFixed(1)} simulated hours in ${o.speed.wallSeconds.toFixed(1)} s (${perRun.toFixed(2)} s per one-hour run, ${Math.round(o.speed.simulatedHoursPerWallSecond * 3600)}x real time)\n`,
  );
}
process.stdout.write(
  `plots: ${values.out}/autoscaling-<trace>.svg|html; total ${((nowMs() - started) / 1000).toFixed(0)} s\n`,
);
process.stdout.write(
  `${JSON.stringify({
    bench: 'autoscaling',
    model: 'llama-3.1-70b',
    gpu: gpu.id,
    tensorParallel: 4,
    slo,
    outcomes: outcomes.map((o) => ({
      trace: o.trace,
      loadMultiplier: o.loadMultiplier,
      requests: o.requests,
      meanReplicasNeededAt80: Math.round(o.meanReplicasNeededAt80 * 10) / 10,
      goal: o.goal,
      speed: o.speed,
      policies: o.policies.map((p) => ({
        name: p.name,
        sloAttainment: p.sloAttainment,
        gpuHours: p.gpuHours,
        gpuHoursVsOracle: p.gpuHoursVsOracle,
        ttftP50Seconds: p.ttftP50Seconds,
        ttftP99Seconds: p.ttftP99Seconds,
        tpotP50Seconds: p.tpotP50Seconds,
        tpotP99Seconds: p.tpotP99Seconds,
        preemptions: p.preemptions,
        settings: p.settings,
      })),
    })),
  })}\n`,
);

function nowMs(): number {
  return performance.now();
}
