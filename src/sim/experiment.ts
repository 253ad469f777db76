import type { KvCapacity } from '../capacity/kv-model.ts';
import { type TokenScalerSpecInput, tokenScalerSpecSchema } from '../config/tokenscaler-spec.ts';
import { type DecisionPolicy, policyOfSpec } from '../core/decide.ts';
import type { HpaBehavior, HpaControllerConfig } from '../core/hpa.ts';
import { type DemandSeries, offeredDemand, oracleSchedule, peakDemand } from './demand.ts';
import {
  type ControlLoopSettings,
  createPolicy,
  DEFAULT_HPA_CONTROLLER_CONFIG,
  KNATIVE_KPA_DEFAULTS,
  type PolicyName,
  type PolicySpec,
} from './policies.ts';
import { type PolicyRun, type PolicySummary, type SloTargets, summarize } from './report.ts';
import type { StepTimeModel } from './roofline.ts';
import { type FleetSettings, runSimulation } from './simulation.ts';
import type { Trace } from './trace.ts';

/**
 * A comparison: one trace, one fleet, several policies. Runs the oracle first (the cheapest
 * perfect-foresight schedule that meets the SLO goal), then tokenscaler as configured, then the
 * peers, each at an explicit threshold, at a documented default, or tuned so that it spends at
 * least tokenscaler's GPU-hours (a cost-matched comparison: "given as many GPUs, how well does it
 * do?").
 */

export interface EngineSettings {
  blockSize: number;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
}

export interface TokenscalerOverrides {
  targetKvCacheUtilization?: number;
  prefillUtilization?: number;
  queueToleranceTokens?: number;
  demandPercentile?: number;
  demandWindowSeconds?: number;
  scaleDownStabilizationSeconds?: number;
  /** Prompt tokens/s per replica for the prefill term; default: the roofline figure. */
  prefillTokensPerSecondPerReplica?: number;
  controllerIntervalSeconds: number;
  rateWindowSeconds: number;
  /** `behavior` of the HPA tokenscaler owns. */
  hpaBehavior: HpaBehavior;
}

export interface PeerTargets {
  rpsPerReplica?: number;
  concurrencyPerReplica?: number;
  kvUtilization?: number;
  waitingRequestsPerReplica?: number;
  staticReplicas?: number;
}

export type PeerTuning = 'match-cost' | 'defaults';

export interface ExperimentInput {
  trace: Trace;
  capacity: KvCapacity;
  stepModel: StepTimeModel;
  engine: EngineSettings;
  coldStartSeconds: number;
  drainGraceSeconds: number;
  scrapeIntervalSeconds: number;
  hpaSyncSeconds: number;
  hpaConfig?: HpaControllerConfig;
  minReplicas: number;
  maxReplicas: number;
  /** Replicas every policy starts with (static excepted); default: sized for the first minutes. */
  initialReplicas?: number;
  slo: SloTargets & { goal: number };
  gpuHourCostUsd: number;
  policies: readonly PolicyName[];
  tokenscaler: TokenscalerOverrides;
  peers: PeerTargets;
  peerTuning: PeerTuning;
  /** Fix the oracle's utilization instead of searching for the cheapest one that meets the goal. */
  oracleUtilization?: number;
  maxTailSeconds?: number;
  onProgress?: (message: string) => void;
  /** Milliseconds clock for wall-time figures (default performance.now). */
  clockMs?: () => number;
}

export interface ExperimentResult {
  runs: PolicyRun[];
  demand: DemandSeries;
  prefillTokensPerSecondPerReplica: number;
  initialReplicas: number;
  notes: string[];
  /** Every simulation run (tuning included), for the speed figures. */
  simulations: { policy: PolicyName; simulatedSeconds: number; wallSeconds: number; requests: number }[];
}

const DEMAND_STEP_SECONDS = 5;
const DEMAND_SMOOTHING_SECONDS = 30;
/** The oracle looks this far beyond one cold start, so brief dips do not drain replicas it needs again. */
const ORACLE_MARGIN_SECONDS = 30;
/** A cost-matched peer may spend up to this multiple of tokenscaler's GPU-hours. */
export const COST_BAND = 1.05;

export function runExperiment(input: ExperimentInput): ExperimentResult {
  const clock = input.clockMs ?? (() => performance.now());
  const notes: string[] = [];
  const meanPrompt =
    input.trace.requests.reduce((sum, r) => sum + r.inputTokens, 0) / input.trace.requests.length;
  const rooflinePrefill = input.stepModel.packedPrefillTokensPerSecond(
    input.engine.maxNumBatchedTokens,
    meanPrompt,
  );
  const prefillRate = input.tokenscaler.prefillTokensPerSecondPerReplica ?? rooflinePrefill;
  const demand = offeredDemand({
    requests: input.trace.requests,
    tokensPerReplica: input.capacity.tokensPerReplica,
    prefillTokensPerSecondPerReplica: rooflinePrefill,
    stepModel: input.stepModel,
    chunkTokens: input.engine.maxNumBatchedTokens,
    nominalDecodeBatch: 64,
    stepSeconds: DEMAND_STEP_SECONDS,
    smoothingSeconds: DEMAND_SMOOTHING_SECONDS,
  });
  const lookahead = input.coldStartSeconds + ORACLE_MARGIN_SECONDS;
  const initialReplicas = clamp(
    input.initialReplicas ?? Math.ceil(peakDemand(demand, 0, lookahead) / 0.8),
    input.minReplicas,
    input.maxReplicas,
  );
  const fleet: FleetSettings = {
    limits: {
      blockSize: input.engine.blockSize,
      totalBlocks: Math.floor(input.capacity.tokensPerReplica / input.engine.blockSize),
      maxNumBatchedTokens: input.engine.maxNumBatchedTokens,
      maxNumSeqs: input.engine.maxNumSeqs,
    },
    tokensPerReplica: input.capacity.tokensPerReplica,
    gpusPerReplica: input.capacity.gpus,
    stepModel: input.stepModel,
    coldStartSeconds: input.coldStartSeconds,
    drainGraceSeconds: input.drainGraceSeconds,
    scrapeIntervalSeconds: input.scrapeIntervalSeconds,
    minReplicas: input.minReplicas,
    maxReplicas: input.maxReplicas,
    initialReplicas,
    maxTailSeconds: input.maxTailSeconds ?? 3600,
  };
  const loop: ControlLoopSettings = {
    scrapeIntervalSeconds: input.scrapeIntervalSeconds,
    hpaSyncSeconds: input.hpaSyncSeconds,
    hpaConfig: input.hpaConfig ?? DEFAULT_HPA_CONTROLLER_CONFIG,
    minReplicas: input.minReplicas,
    maxReplicas: input.maxReplicas,
  };
  const simulations: ExperimentResult['simulations'] = [];
  const run = (
    spec: PolicySpec,
    settings: PolicySummary['settings'],
    initial = initialReplicas,
  ): PolicyRun => {
    const started = clock();
    const result = runSimulation(
      input.trace.requests,
      { ...fleet, initialReplicas: clamp(initial, input.minReplicas, input.maxReplicas) },
      createPolicy(spec, loop),
    );
    const wallSeconds = (clock() - started) / 1000;
    simulations.push({
      policy: spec.name,
      simulatedSeconds: result.endSeconds,
      wallSeconds,
      requests: result.requests.length,
    });
    return summarize(
      spec.name,
      settings,
      result,
      input.slo,
      input.capacity.gpus,
      input.gpuHourCostUsd,
      wallSeconds,
    );
  };
  const progress = (message: string) => input.onProgress?.(message);
  const runs = new Map<PolicyName, PolicyRun>();

  if (input.policies.includes('oracle')) {
    const attempt = (u: number) =>
      run(
        {
          name: 'oracle',
          schedule: oracleSchedule(demand, u, lookahead, input.minReplicas, input.maxReplicas),
        },
        {
          utilization: round(u, 3),
          lookaheadSeconds: lookahead,
          tuned: input.oracleUtilization === undefined,
        },
      );
    let oracle: PolicyRun;
    if (input.oracleUtilization !== undefined) {
      oracle = attempt(input.oracleUtilization);
    } else {
      progress('oracle: searching the highest utilization that meets the SLO goal');
      oracle = searchOracle(attempt, input.slo.goal);
      if (oracle.summary.sloAttainment < input.slo.goal) {
        notes.push(
          `the oracle does not reach the SLO goal ${pct(input.slo.goal)} even at utilization ${oracle.summary.settings['utilization']}: the SLO is not attainable with this model and GPU for this trace (queueing inside single bursts, or prompts too long for the TTFT target)`,
        );
      }
    }
    runs.set('oracle', oracle);
  }

  if (input.policies.includes('tokenscaler')) {
    progress('tokenscaler: running the real decide() behind an emulated HPA');
    const decision = tokenscalerDecisionPolicy(input, prefillRate);
    runs.set(
      'tokenscaler',
      run(
        {
          name: 'tokenscaler',
          decision,
          tokensPerReplica: input.capacity.tokensPerReplica,
          controllerIntervalSeconds: input.tokenscaler.controllerIntervalSeconds,
          rateWindowSeconds: input.tokenscaler.rateWindowSeconds,
          hpaBehavior: input.tokenscaler.hpaBehavior,
        },
        {
          targetKvCacheUtilization: decision.targetKvCacheUtilization,
          prefillTokensPerSecondPerReplica: Math.round(prefillRate),
          prefillUtilization: decision.prefillUtilization,
          queueToleranceTokens: decision.queueToleranceTokens,
          demandPercentile: decision.demandPercentile,
          windowSeconds: decision.windowSeconds,
          scaleDownStabilizationSeconds: decision.scaleDownStabilizationSeconds,
        },
      ),
    );
  }

  const reference = runs.get('tokenscaler')?.summary.gpuHours;
  const tuning = input.peerTuning === 'match-cost' && reference !== undefined;
  const untunedPeers = (
    [
      ['rps-hpa', input.peers.rpsPerReplica],
      ['concurrency', input.peers.concurrencyPerReplica],
      ['kv-utilization-hpa', input.peers.kvUtilization],
      ['queue-keda', input.peers.waitingRequestsPerReplica],
      ['static', input.peers.staticReplicas],
    ] as const
  ).filter(([name, explicit]) => input.policies.includes(name) && explicit === undefined);
  if (input.peerTuning === 'match-cost' && reference === undefined && untunedPeers.length > 0) {
    notes.push(
      `${untunedPeers.map(([name]) => name).join(', ')} ran at default thresholds: cost matching needs tokenscaler among the policies`,
    );
  }
  const defaults = peerDefaults(input, demand, rooflinePrefill, meanPrompt);

  const peer = (
    name: Exclude<PolicyName, 'tokenscaler' | 'oracle' | 'static'>,
    knob: string,
    explicit: number | undefined,
    fallback: number,
    bounds: [number, number],
    spec: (value: number) => PolicySpec,
  ) => {
    if (!input.policies.includes(name)) return;
    const evaluate = (value: number, tuned: boolean) => run(spec(value), { [knob]: round(value, 4), tuned });
    if (explicit !== undefined || !tuning) {
      runs.set(name, evaluate(explicit ?? fallback, false));
      return;
    }
    progress(`${name}: tuning ${knob} to spend at least tokenscaler's ${round(reference, 1)} GPU-hours`);
    runs.set(
      name,
      matchCost((v) => evaluate(v, true), fallback, bounds, reference),
    );
  };

  peer(
    'rps-hpa',
    'targetRequestsPerSecondPerReplica',
    input.peers.rpsPerReplica,
    defaults.rps,
    [0.01, 1e4],
    (v) => ({
      name: 'rps-hpa',
      targetRequestsPerSecondPerReplica: v,
      rateWindowSeconds: 60,
    }),
  );
  peer(
    'concurrency',
    'targetConcurrencyPerReplica',
    input.peers.concurrencyPerReplica,
    defaults.concurrency,
    [0.1, 1e5],
    (v) => ({ name: 'concurrency', targetConcurrencyPerReplica: v, kpa: KNATIVE_KPA_DEFAULTS }),
  );
  peer(
    'kv-utilization-hpa',
    'targetKvUtilization',
    input.peers.kvUtilization,
    defaults.kv,
    [0.005, 1],
    (v) => ({
      name: 'kv-utilization-hpa',
      targetKvUtilization: v,
    }),
  );
  peer(
    'queue-keda',
    'targetWaitingRequestsPerReplica',
    input.peers.waitingRequestsPerReplica,
    defaults.queue,
    [0.01, 1e4],
    (v) => ({ name: 'queue-keda', targetWaitingRequestsPerReplica: v }),
  );

  if (input.policies.includes('static')) {
    const evaluate = (n: number, tuned: boolean) =>
      run({ name: 'static', replicas: n }, { replicas: n, tuned }, n);
    if (input.peers.staticReplicas !== undefined || !tuning) {
      runs.set('static', evaluate(input.peers.staticReplicas ?? defaults.staticReplicas, false));
    } else {
      progress(`static: the smallest fleet that spends at least ${round(reference, 1)} GPU-hours`);
      const horizonHours = (runs.get('tokenscaler')?.summary.simulatedSeconds ?? 3600) / 3600;
      let n = clamp(Math.ceil(reference / (horizonHours * input.capacity.gpus)), 1, input.maxReplicas);
      let result = evaluate(n, true);
      while (result.summary.gpuHours < reference && n < input.maxReplicas) {
        n++;
        result = evaluate(n, true);
      }
      while (n > 1) {
        const smaller = evaluate(n - 1, true);
        if (smaller.summary.gpuHours < reference) break;
        n--;
        result = smaller;
      }
      runs.set('static', result);
    }
  }

  const oracleHours = runs.get('oracle')?.summary.gpuHours;
  const ordered = input.policies.map((name) => runs.get(name) as PolicyRun);
  if (oracleHours !== undefined && oracleHours > 0) {
    for (const r of ordered) r.summary.gpuHoursVsOracle = r.summary.gpuHours / oracleHours;
  }
  return {
    runs: ordered,
    demand,
    prefillTokensPerSecondPerReplica: prefillRate,
    initialReplicas,
    notes,
    simulations,
  };
}

/**
 * tokenscaler's decision policy: every default from the TokenScaler spec schema (config/ owns the
 * defaults), with the fleet's bounds, the prefill rate of this model on this GPU, and any override.
 */
function tokenscalerDecisionPolicy(input: ExperimentInput, prefillRate: number): DecisionPolicy {
  const o = input.tokenscaler;
  const spec: TokenScalerSpecInput = {
    scaleTargetRef: { name: 'simulated' },
    minReplicas: input.minReplicas,
    maxReplicas: input.maxReplicas,
    model: { preset: 'simulated' },
    accelerator: { memoryGiB: 1 },
    engine: { kind: 'tokenscaler-gateway' },
    metrics: { scrape: { urls: ['http://127.0.0.1:9464/metrics'] } },
    target: {
      prefillTokensPerSecondPerReplica: prefillRate,
      ...(o.targetKvCacheUtilization !== undefined ? { kvCacheUtilization: o.targetKvCacheUtilization } : {}),
      ...(o.prefillUtilization !== undefined ? { prefillUtilization: o.prefillUtilization } : {}),
      ...(o.queueToleranceTokens !== undefined ? { queueToleranceTokens: o.queueToleranceTokens } : {}),
    },
    demand: {
      ...(o.demandPercentile !== undefined ? { percentile: o.demandPercentile } : {}),
      ...(o.demandWindowSeconds !== undefined ? { windowSeconds: o.demandWindowSeconds } : {}),
    },
    behavior: {
      ...(o.scaleDownStabilizationSeconds !== undefined
        ? { scaleDownStabilizationSeconds: o.scaleDownStabilizationSeconds }
        : {}),
    },
  };
  return policyOfSpec(tokenScalerSpecSchema.parse(spec));
}

/**
 * Thresholds a team would start from without tuning:
 * - rps: what one replica prefills at 80% of its roofline rate, divided by the trace's mean prompt
 *   (a load test of this request mix);
 * - concurrency: Knative's default target of 100 in-flight requests at its 70% target utilization;
 * - kv: 0.8 (llm-d's decode trigger on vllm:kv_cache_usage_perc);
 * - queue: 5 waiting requests per replica (vLLM production-stack Helm chart);
 * - static: the peak demand at 80%.
 * (peer-autoscalers.md 1.4, 1.7, 1.10.)
 */
function peerDefaults(input: ExperimentInput, demand: DemandSeries, prefillRate: number, meanPrompt: number) {
  return {
    rps: (prefillRate * 0.8) / meanPrompt,
    concurrency: 70,
    kv: 0.8,
    queue: 5,
    staticReplicas: clamp(
      Math.ceil(peakDemand(demand, 0, Number.POSITIVE_INFINITY) / 0.8),
      1,
      input.maxReplicas,
    ),
  };
}

/**
 * A peer's threshold tuned to spend at least `referenceGpuHours` (tokenscaler's), giving the peer
 * its best shot at that cost: GPU-hours fall as the threshold rises (more work per replica), so
 * bracket the crossing by doubling or halving from the start value and bisect in log space; then,
 * among the settings tried that spend between the reference and `band` times it, take the one with
 * the best SLO attainment (fewest GPU-hours on a tie). If none lands in that band, the setting with
 * the fewest GPU-hours at or above the reference; if none reaches it, the most expensive one tried.
 *
 * GPU-hours are not always monotone in the threshold: a threshold so high that the fleet never grows
 * runs long queues, and the run lasts (and bills) longer. The band keeps such degenerate settings
 * from standing in for the peer.
 */
export function matchCost(
  evaluate: (value: number) => PolicyRun,
  start: number,
  bounds: [number, number],
  referenceGpuHours: number,
  band = COST_BAND,
  bisections = 6,
): PolicyRun {
  const tried: { value: number; run: PolicyRun }[] = [];
  const at = (value: number) => {
    const run = evaluate(value);
    tried.push({ value, run });
    return run.summary.gpuHours;
  };
  let low = clamp(start, bounds[0], bounds[1]);
  let high = low;
  if (at(low) >= referenceGpuHours) {
    // Raise the threshold until it spends less than the reference.
    while (high < bounds[1]) {
      high = Math.min(bounds[1], high * 2);
      if (at(high) < referenceGpuHours) break;
      low = high;
    }
  } else {
    while (low > bounds[0]) {
      low = Math.max(bounds[0], low / 2);
      if (at(low) >= referenceGpuHours) break;
      high = low;
    }
  }
  for (let i = 0; i < bisections && high / low > 1.02; i++) {
    const mid = Math.sqrt(low * high);
    if (at(mid) >= referenceGpuHours) low = mid;
    else high = mid;
  }
  const enough = tried.filter((t) => t.run.summary.gpuHours >= referenceGpuHours);
  const inBand = enough.filter((t) => t.run.summary.gpuHours <= referenceGpuHours * band);
  if (inBand.length > 0) {
    inBand.sort(
      (a, b) =>
        b.run.summary.sloAttainment - a.run.summary.sloAttainment ||
        a.run.summary.gpuHours - b.run.summary.gpuHours,
    );
    return (inBand[0] as { run: PolicyRun }).run;
  }
  const pool = enough.length > 0 ? enough : tried;
  pool.sort((a, b) =>
    enough.length > 0
      ? a.run.summary.gpuHours - b.run.summary.gpuHours
      : b.run.summary.gpuHours - a.run.summary.gpuHours,
  );
  return (pool[0] as { run: PolicyRun }).run;
}

/** Highest utilization in [0.2, 1] whose oracle run meets the goal; bisection on a monotone-ish curve. */
function searchOracle(attempt: (u: number) => PolicyRun, goal: number): PolicyRun {
  let best: PolicyRun | undefined;
  let bestFailing: PolicyRun | undefined;
  const consider = (u: number) => {
    const run = attempt(u);
    if (run.summary.sloAttainment >= goal) {
      if (best === undefined || run.summary.gpuHours < best.summary.gpuHours) best = run;
      return true;
    }
    if (bestFailing === undefined || run.summary.sloAttainment > bestFailing.summary.sloAttainment)
      bestFailing = run;
    return false;
  };
  let low = 0.2;
  let high = 1;
  if (consider(high)) return best as PolicyRun;
  if (!consider(low)) return bestFailing as PolicyRun;
  for (let i = 0; i < 6; i++) {
    const mid = (low + high) / 2;
    if (consider(mid)) low = mid;
    else high = mid;
  }
  return best as PolicyRun;
}

function clamp(n: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, n));
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function pct(n: number): string {
  return `${(n * 100).toFixed(1)}%`;
}
