import { describe, expect, it } from 'vitest';
import { DEFAULT_HPA_CONTROLLER_CONFIG } from '../core/hpa.ts';
import { oracleSchedule } from './demand.ts';
import {
  type ControlLoopSettings,
  createPolicy,
  KNATIVE_KPA_DEFAULTS,
  type PolicySpec,
  TOKENSCALER_HPA_BEHAVIOR,
} from './policies.ts';
import type { StepCost } from './replica.ts';
import { type FleetSettings, type FleetView, type PolicyRuntime, runSimulation } from './simulation.ts';
import type { TraceRequest } from './trace.ts';

/** 20 ms per step plus 0.05 ms per token: a replica prefills ~20,000 tokens/s. */
const COST: StepCost = { stepSeconds: (batchTokens) => 0.02 + batchTokens * 0.00005 };

const SETTINGS: FleetSettings = {
  limits: { blockSize: 16, totalBlocks: 4096, maxNumBatchedTokens: 2048, maxNumSeqs: 64 },
  tokensPerReplica: 4096 * 16,
  gpusPerReplica: 2,
  stepModel: COST,
  coldStartSeconds: 60,
  drainGraceSeconds: 120,
  scrapeIntervalSeconds: 5,
  minReplicas: 1,
  maxReplicas: 20,
  initialReplicas: 1,
  maxTailSeconds: 3600,
};

const LOOP: ControlLoopSettings = {
  scrapeIntervalSeconds: 5,
  hpaSyncSeconds: 15,
  hpaConfig: DEFAULT_HPA_CONTROLLER_CONFIG,
  minReplicas: 1,
  maxReplicas: 20,
};

/** Requests every `gapSeconds` from `from` to `to`. */
function steady(from: number, to: number, gapSeconds: number, input = 500, output = 50): TraceRequest[] {
  const out: TraceRequest[] = [];
  for (let t = from; t < to; t += gapSeconds)
    out.push({ arrivalSeconds: t, inputTokens: input, outputTokens: output });
  return out;
}

/** A policy that sets the replica count at fixed times. */
function scripted(changes: [number, number][]): (fleet: FleetView) => PolicyRuntime {
  return () => ({
    tasks: changes.map(([at, replicas]) => ({
      periodSeconds: 1e9,
      phaseSeconds: at,
      run: (context) => context.fleet.scaleTo(replicas, context.nowSeconds),
    })),
  });
}

describe('runSimulation', () => {
  it('serves every request of a static fleet and bills replicas x time', () => {
    const trace = steady(0, 100, 0.5);
    const result = runSimulation(trace, { ...SETTINGS, initialReplicas: 3 }, scripted([]));
    expect(result.requests.every((r) => r.phase === 'done')).toBe(true);
    expect(result.failed).toBe(0);
    expect(result.replicaSeconds).toBeCloseTo(3 * result.endSeconds, 6);
    expect(result.endSeconds).toBeGreaterThan(99.5);
    // Least-loaded routing spreads the work: no preemption, short queues.
    expect(result.preemptions).toBe(0);
    expect(result.timeline.length).toBeGreaterThan(19);
  });

  it('is deterministic', () => {
    const trace = steady(0, 200, 0.1, 1500, 200);
    const run = () =>
      runSimulation(
        trace,
        SETTINGS,
        createPolicy({ name: 'rps-hpa', targetRequestsPerSecondPerReplica: 2, rateWindowSeconds: 60 }, LOOP),
      );
    const a = run();
    const b = run();
    expect(a.replicaSeconds).toBe(b.replicaSeconds);
    expect(a.requests.map((r) => r.finishedSeconds)).toEqual(b.requests.map((r) => r.finishedSeconds));
    expect(a.timeline).toEqual(b.timeline);
  });

  it('bills a new replica from creation and routes to it only after its cold start', () => {
    const trace = steady(0, 300, 1);
    const result = runSimulation(trace, SETTINGS, scripted([[10, 3]]));
    const at = (t: number) => result.timeline.find((p) => p.atSeconds >= t);
    expect(at(15)?.provisionedReplicas).toBe(3);
    expect(at(15)?.readyReplicas).toBe(1);
    // Created at 10 s, ready at 70 s.
    expect(at(65)?.readyReplicas).toBe(1);
    expect(at(75)?.readyReplicas).toBe(3);
    expect(result.replicaSeconds).toBeCloseTo(result.endSeconds + 2 * (result.endSeconds - 10), 6);
  });

  it('drains a removed replica: it takes no new requests and finishes the ones it has', () => {
    // Long generations so that requests are in flight when the fleet shrinks.
    const trace = steady(0, 60, 0.25, 200, 2000);
    const result = runSimulation(trace, { ...SETTINGS, initialReplicas: 4 }, scripted([[30, 1]]));
    expect(result.failed).toBe(0);
    expect(result.requests.every((r) => r.phase === 'done')).toBe(true);
    const after = result.timeline.find((p) => p.atSeconds >= 35);
    expect(after?.readyReplicas).toBe(1);
    // The drained replicas stay billed while they finish: more than 1 x end + 3 x 30 s.
    expect(result.replicaSeconds).toBeGreaterThan(result.endSeconds + 3 * 30);
  });

  it('aborts what a draining replica has not finished when its grace period runs out', () => {
    const trace = steady(0, 60, 0.25, 200, 2000);
    const result = runSimulation(
      trace,
      { ...SETTINGS, initialReplicas: 4, drainGraceSeconds: 1 },
      scripted([[30, 1]]),
    );
    expect(result.aborted).toBeGreaterThan(0);
    expect(result.failed).toBe(result.aborted);
    expect(result.requests.filter((r) => r.phase === 'failed')).toHaveLength(result.aborted);
  });

  it('rejects a request that cannot fit one replica', () => {
    const trace = [
      { arrivalSeconds: 0, inputTokens: 70_000, outputTokens: 10 },
      { arrivalSeconds: 1, inputTokens: 100, outputTokens: 10 },
    ];
    const result = runSimulation(trace, SETTINGS, scripted([]));
    expect(result.rejected).toBe(1);
    expect(result.requests[0]?.phase).toBe('failed');
    expect(result.requests[1]?.phase).toBe('done');
  });

  it('holds requests at the gateway while no replica is ready', () => {
    const trace = steady(0, 5, 1);
    const result = runSimulation(
      trace,
      { ...SETTINGS, initialReplicas: 0, minReplicas: 0 },
      scripted([[0, 1]]),
    );
    // The only replica is ready at 60 s: every first token comes after it.
    for (const r of result.requests) expect(r.firstTokenSeconds).toBeGreaterThanOrEqual(60);
  });
});

describe('policies in the simulated control loop', () => {
  const burst = [...steady(0, 120, 1), ...steady(120, 600, 0.02, 1500, 100), ...steady(600, 1800, 1)];

  const run = (spec: PolicySpec, settings: Partial<FleetSettings> = {}) =>
    runSimulation(burst, { ...SETTINGS, ...settings }, createPolicy(spec, LOOP));

  const peakSpec = (result: ReturnType<typeof run>) =>
    Math.max(...result.timeline.map((p) => p.specReplicas));
  const finalSpec = (result: ReturnType<typeof run>) =>
    result.timeline[result.timeline.length - 1]?.specReplicas;

  it.each<[string, PolicySpec]>([
    // Completed requests per second: a target above what one replica completes (~11/s here) would
    // never scale up, since completions cannot exceed capacity.
    ['rps-hpa', { name: 'rps-hpa', targetRequestsPerSecondPerReplica: 5, rateWindowSeconds: 60 }],
    ['queue-keda', { name: 'queue-keda', targetWaitingRequestsPerReplica: 5 }],
    ['kv-utilization-hpa', { name: 'kv-utilization-hpa', targetKvUtilization: 0.05 }],
    ['concurrency', { name: 'concurrency', targetConcurrencyPerReplica: 10, kpa: KNATIVE_KPA_DEFAULTS }],
  ])('%s scales up for a burst and back down after it', (_name, spec) => {
    const result = run(spec);
    expect(peakSpec(result)).toBeGreaterThan(2);
    expect(finalSpec(result)).toBeLessThan(peakSpec(result));
  });

  it('the legacy HPA grows at most to max(2 x current, 4) per sync', () => {
    const result = run({ name: 'rps-hpa', targetRequestsPerSecondPerReplica: 1, rateWindowSeconds: 60 });
    let previous = 1;
    for (const p of result.timeline) {
      expect(p.specReplicas).toBeLessThanOrEqual(Math.max(2 * previous, 4));
      previous = p.specReplicas;
    }
  });

  it('tokenscaler runs the real decide() and publishes its binding constraint', () => {
    const result = run({
      name: 'tokenscaler',
      decision: {
        minReplicas: 1,
        maxReplicas: 20,
        targetKvCacheUtilization: 0.8,
        prefillTokensPerSecondPerReplica: 20_000,
        prefillUtilization: 0.8,
        queueDrainSeconds: 10,
        queueToleranceTokens: 1e9,
        demandPercentile: 95,
        windowSeconds: 300,
        fallbackAfterSeconds: 120,
        scaleDownStabilizationSeconds: 300,
      },
      tokensPerReplica: SETTINGS.tokensPerReplica,
      controllerIntervalSeconds: 5,
      rateWindowSeconds: 60,
      hpaBehavior: TOKENSCALER_HPA_BEHAVIOR,
    });
    const constraints = new Set(result.timeline.map((p) => p.annotation?.split(':')[0]));
    expect(constraints.has('prefill') || constraints.has('kv-memory')).toBe(true);
    // 50 requests/s x 1,500 prompt tokens = 75,000 tokens/s / (20,000 x 0.8) -> 5 replicas.
    expect(peakSpec(result)).toBeGreaterThanOrEqual(5);
    expect(finalSpec(result)).toBeLessThan(peakSpec(result));
  });

  it('static keeps its fleet', () => {
    const result = run({ name: 'static', replicas: 4 }, { initialReplicas: 4 });
    expect(new Set(result.timeline.map((p) => p.specReplicas))).toEqual(new Set([4]));
    expect(result.scaleEvents).toBe(0);
  });

  it('the oracle follows its schedule ahead of the demand', () => {
    const demand = {
      stepSeconds: 5,
      kvReplicas: new Float64Array(400),
      prefillReplicas: new Float64Array(400),
      replicas: Float64Array.from({ length: 400 }, (_, i) => (i * 5 >= 120 && i * 5 < 600 ? 4 : 0.5)),
    };
    const result = run({ name: 'oracle', schedule: oracleSchedule(demand, 0.8, 90, 1, 20) });
    // 4 / 0.8 = 5 replicas, started 90 s before the burst at 120 s.
    const at = (t: number) => result.timeline.find((p) => p.atSeconds >= t)?.specReplicas;
    expect(at(20)).toBe(1);
    expect(at(35)).toBe(5);
    expect(at(700)).toBe(1);
  });
});
