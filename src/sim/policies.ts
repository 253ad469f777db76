import { type DeciderState, type DecisionPolicy, decide, initialDeciderState } from '../core/decide.ts';
import type { Decision } from '../core/decision.ts';
import {
  DEFAULT_HPA_CONTROLLER_CONFIG,
  type HpaBehavior,
  type HpaControllerConfig,
  type HpaMetricReading,
  type HpaMetricSpec,
  type HpaSpec,
  type HpaState,
  initialHpaState,
  reconcileHpa,
} from '../core/hpa.ts';
import type { Observation } from '../core/observation.ts';
import { OWNED_HPA_BEHAVIOR } from '../core/owned-hpa.ts';
import type { Scrape, ScrapeStore } from './signals.ts';
import type { ControlContext, FleetView, PeriodicTask, PolicyRuntime } from './simulation.ts';

/**
 * The scaling policies, each fed only by what it would see in production (the scrapes of
 * signals.ts) and acting through the Kubernetes machinery it really goes through:
 *
 * - tokenscaler: the real `decide` of src/core on an Observation built from the gateway and engine
 *   metrics, published as the external metric `tokenscaler_desired_replicas` and applied by an HPA
 *   with an AverageValue target of 1 (DESIGN.md "Serving the target").
 * - rps-hpa: prometheus-adapter external metric sum(rate(requests_total[1m])) (requests counted as
 *   they complete, as vLLM request_success_total and ingress counters are), AverageValue target
 *   of requests/s per replica, HPA without `behavior` (the default most manifests ship).
 * - kv-utilization-hpa: Pods metric vllm:kv_cache_usage_perc, AverageValue target (e.g. 0.8).
 * - queue-keda: KEDA Prometheus trigger sum(vllm:num_requests_waiting), AverageValue threshold N
 *   (KEDA serves the value; its HPA does the arithmetic).
 * - concurrency: Knative KPA on in-flight requests per replica (stable 60 s / panic 6 s windows).
 * - static: a fixed fleet.
 * - oracle: perfect foresight of the demand, provisioned ahead of need by the cold start.
 *
 * HPA arithmetic: src/core/hpa.ts (reference/external-metrics-contract.md section 5).
 */

/**
 * Window of the rates and percentiles tokenscaler's sources compute on the scrape path
 * (src/sources/observation-source.ts DEFAULT_SCRAPE_RATE_WINDOW_SECONDS, mirrored: 120 s, the PromQL
 * default).
 */
export const TOKENSCALER_RATE_WINDOW_SECONDS = 120;

export const POLICY_NAMES = [
  'tokenscaler',
  'rps-hpa',
  'concurrency',
  'kv-utilization-hpa',
  'queue-keda',
  'static',
  'oracle',
] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export interface ControlLoopSettings {
  scrapeIntervalSeconds: number;
  /** --horizontal-pod-autoscaler-sync-period (contract 5.1: 15 s). */
  hpaSyncSeconds: number;
  hpaConfig: HpaControllerConfig;
  minReplicas: number;
  maxReplicas: number;
}

export type PolicySpec =
  | {
      name: 'tokenscaler';
      decision: DecisionPolicy;
      /** KV tokens one replica holds, as the engine reports it. */
      tokensPerReplica: number;
      /** How often the controller observes and decides. */
      controllerIntervalSeconds: number;
      /** rate() and percentile window over the scrapes. */
      rateWindowSeconds: number;
      /** `behavior` of the HPA tokenscaler creates (spec.hpa.create). */
      hpaBehavior: HpaBehavior;
    }
  | { name: 'rps-hpa'; targetRequestsPerSecondPerReplica: number; rateWindowSeconds: number }
  | { name: 'kv-utilization-hpa'; targetKvUtilization: number }
  | { name: 'queue-keda'; targetWaitingRequestsPerReplica: number }
  | { name: 'concurrency'; targetConcurrencyPerReplica: number; kpa: KpaSettings }
  | { name: 'static'; replicas: number }
  | { name: 'oracle'; schedule: OracleSchedule };

export interface KpaSettings {
  stableWindowSeconds: number;
  panicWindowSeconds: number;
  /** Panic when the panic-window pod count is at least this multiple of ready pods (2.0 = 200%). */
  panicThreshold: number;
  maxScaleUpRate: number;
  maxScaleDownRate: number;
  tickSeconds: number;
}

/** Knative Serving defaults (config/core/configmaps/autoscaler.yaml; peer-autoscalers.md 1.7). */
export const KNATIVE_KPA_DEFAULTS: KpaSettings = {
  stableWindowSeconds: 60,
  panicWindowSeconds: 6,
  panicThreshold: 2,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  tickSeconds: 2,
};

/** Replicas the oracle wants at a time (it already looks ahead). */
export interface OracleSchedule {
  desiredAt(seconds: number): number;
}

/** The HPA tokenscaler creates for its scaler: the same behavior src/kube writes (src/core/owned-hpa.ts). */
export const TOKENSCALER_HPA_BEHAVIOR: HpaBehavior = OWNED_HPA_BEHAVIOR;

export function createPolicy(
  spec: PolicySpec,
  loop: ControlLoopSettings,
): (fleet: FleetView) => PolicyRuntime {
  switch (spec.name) {
    case 'tokenscaler':
      return () => tokenscalerPolicy(spec, loop);
    case 'rps-hpa':
      return () =>
        hpaPolicy(
          loop,
          {
            type: 'External',
            name: 'requests_per_second',
            target: {
              type: 'AverageValue',
              averageValueMilli: milli(spec.targetRequestsPerSecondPerReplica),
            },
          },
          (context) => {
            const rate = context.metrics.rate((s) => s.requestsTotal, spec.rateWindowSeconds);
            return rate === undefined ? noData('requests_per_second') : values([rate]);
          },
        );
    case 'kv-utilization-hpa':
      return () =>
        hpaPolicy(
          loop,
          {
            type: 'Pods',
            name: 'vllm:kv_cache_usage_perc',
            target: { type: 'AverageValue', averageValueMilli: milli(spec.targetKvUtilization) },
          },
          (context) => {
            const latest = context.metrics.latest;
            if (latest === undefined) return noData('vllm:kv_cache_usage_perc');
            const byPod: Record<string, number> = {};
            for (const pod of latest.pods) byPod[pod.name] = milliTruncated(pod.kvUsage);
            return { kind: 'pod-values', byPod };
          },
        );
    case 'queue-keda':
      return () =>
        hpaPolicy(
          loop,
          {
            type: 'External',
            name: 's0-prometheus',
            target: { type: 'AverageValue', averageValueMilli: milli(spec.targetWaitingRequestsPerReplica) },
          },
          (context) => {
            const latest = context.metrics.latest;
            if (latest === undefined) return noData('s0-prometheus');
            let waiting = 0;
            for (const pod of latest.pods) waiting += pod.waitingRequests;
            return values([waiting]);
          },
        );
    case 'concurrency':
      return () => kpaPolicy(spec.targetConcurrencyPerReplica, spec.kpa);
    case 'static':
      return () => ({ tasks: [] });
    case 'oracle':
      return () => ({
        tasks: [
          {
            periodSeconds: loop.scrapeIntervalSeconds,
            phaseSeconds: 0.5,
            run: (context) =>
              context.fleet.scaleTo(spec.schedule.desiredAt(context.nowSeconds), context.nowSeconds),
          },
        ],
      });
  }
}

/** Quantities as the metrics adapters emit them: int64(value x 1000) milli-units. */
function milliTruncated(value: number): number {
  return Math.trunc(value * 1000);
}

function milli(value: number): number {
  return Math.round(value * 1000);
}

function values(raw: number[]): HpaMetricReading {
  return { kind: 'values', valuesMilli: raw.map(milliTruncated) };
}

function noData(name: string): HpaMetricReading {
  return { kind: 'error', message: `no data for ${name} yet` };
}

/** One HPA: reads its metric at each sync, runs the controller's arithmetic, writes the scale. */
class HpaEmulator {
  private state: HpaState = initialHpaState();
  private readonly spec: HpaSpec;
  private readonly config: HpaControllerConfig;

  constructor(spec: HpaSpec, config: HpaControllerConfig) {
    this.spec = spec;
    this.config = config;
  }

  sync(context: ControlContext, reading: HpaMetricReading): void {
    const { fleet, nowSeconds } = context;
    const result = reconcileHpa(
      this.spec,
      {
        specReplicas: fleet.specReplicas,
        statusReplicas: fleet.statusReplicas,
        pods: fleet.pods(),
        readings: [reading],
      },
      this.state,
      nowSeconds,
      this.config,
    );
    this.state = result.state;
    if (result.rescale) fleet.scaleTo(result.desiredReplicas, nowSeconds);
  }
}

function hpaPolicy(
  loop: ControlLoopSettings,
  metric: HpaMetricSpec,
  read: (context: ControlContext) => HpaMetricReading,
  behavior?: HpaBehavior,
): PolicyRuntime {
  const hpa = new HpaEmulator(
    {
      minReplicas: loop.minReplicas,
      maxReplicas: loop.maxReplicas,
      metrics: [metric],
      ...(behavior !== undefined ? { behavior } : {}),
    },
    loop.hpaConfig,
  );
  return {
    tasks: [
      {
        periodSeconds: loop.hpaSyncSeconds,
        // The HPA syncs on its own clock, a second after a scrape.
        phaseSeconds: 1,
        run: (context) => hpa.sync(context, read(context)),
      },
    ],
  };
}

/**
 * tokenscaler: observe -> decide every controller interval; the HPA reads the published
 * `tokenscaler_desired_replicas` at its own sync.
 */
function tokenscalerPolicy(
  spec: Extract<PolicySpec, { name: 'tokenscaler' }>,
  loop: ControlLoopSettings,
): PolicyRuntime {
  let state: DeciderState | undefined;
  let last: Decision | undefined;
  const hpa = new HpaEmulator(
    {
      minReplicas: loop.minReplicas,
      maxReplicas: loop.maxReplicas,
      metrics: [
        {
          type: 'External',
          name: 'tokenscaler_desired_replicas',
          target: { type: 'AverageValue', averageValueMilli: 1000 },
        },
      ],
      behavior: spec.hpaBehavior,
    },
    loop.hpaConfig,
  );
  const controller: PeriodicTask = {
    periodSeconds: spec.controllerIntervalSeconds,
    phaseSeconds: 0.5,
    run: (context) => {
      state ??= initialDeciderState(context.nowSeconds);
      const observation = observationOf(context.metrics, spec.rateWindowSeconds);
      const result = decide(
        {
          nowSeconds: context.nowSeconds,
          observation,
          currentReplicas: context.fleet.specReplicas,
          readyReplicas: context.fleet.readyReplicas,
          tokensPerReplica: spec.tokensPerReplica,
          policy: spec.decision,
        },
        state,
      );
      state = result.nextState;
      last = result.decision;
    },
  };
  const sync: PeriodicTask = {
    periodSeconds: loop.hpaSyncSeconds,
    phaseSeconds: 1,
    run: (context) => {
      const reading: HpaMetricReading =
        last === undefined
          ? { kind: 'error', message: 'tokenscaler_desired_replicas not published yet' }
          : { kind: 'values', valuesMilli: [last.desiredReplicas * 1000] };
      hpa.sync(context, reading);
    },
  };
  return {
    tasks: [controller, sync],
    annotate: () => (last === undefined ? undefined : `${last.bindingConstraint}:${last.desiredReplicas}`),
  };
}

/**
 * The Observation src/sources builds for engine kind `tokenscaler-gateway`
 * (sources/engines/tokenscaler-gateway.ts) from the latest scrape: in-flight and waiting tokens and
 * in-flight requests from the gateway gauges; prompt and generated tokens per second as rate() of
 * the gateway's token counters over the rate window (counted when requests settle, as the gateway
 * does); token percentiles by histogram_quantile over the same window. The gateway does not see the
 * engines' KV cache, queue or preemptions, so those stay unmeasured, as in production.
 */
export function observationOf(metrics: ScrapeStore, rateWindowSeconds: number): Observation | undefined {
  const latest = metrics.latest;
  if (latest === undefined) return undefined;
  const percentiles = (histogram: (s: Scrape) => Scrape['inputHistogram']) => {
    const p50 = metrics.quantile(histogram, 0.5, rateWindowSeconds);
    const p95 = metrics.quantile(histogram, 0.95, rateWindowSeconds);
    const p99 = metrics.quantile(histogram, 0.99, rateWindowSeconds);
    if (p50 === undefined || p95 === undefined || p99 === undefined) return undefined;
    return { p50, p95, p99 };
  };
  const promptRate = metrics.rate((s) => s.inputTokensTotal, rateWindowSeconds);
  const generationRate = metrics.rate((s) => s.outputTokensTotal, rateWindowSeconds);
  const input = percentiles((s) => s.inputHistogram);
  const output = percentiles((s) => s.outputHistogram);
  return {
    observedAtSeconds: latest.atSeconds,
    // One gateway endpoint in front of the fleet.
    podsReporting: 1,
    inflightTokens: latest.inflightTokens,
    waitingTokens: latest.waitingTokens,
    runningRequests: latest.inflightRequests,
    ...(promptRate !== undefined ? { promptTokensPerSecond: promptRate } : {}),
    ...(generationRate !== undefined ? { generationTokensPerSecond: generationRate } : {}),
    ...(input !== undefined ? { requestInputTokens: input } : {}),
    ...(output !== undefined ? { requestOutputTokens: output } : {}),
    provenance: {
      inflightTokens: 'measured',
      waitingTokens: 'measured',
      runningRequests: 'measured',
      ...(promptRate !== undefined ? { promptTokensPerSecond: 'measured' as const } : {}),
      ...(generationRate !== undefined ? { generationTokensPerSecond: 'measured' as const } : {}),
      ...(input !== undefined ? { requestInputTokens: 'measured' as const } : {}),
      ...(output !== undefined ? { requestOutputTokens: 'measured' as const } : {}),
    },
  };
}

/**
 * Knative's KPA (pkg/autoscaler/scaling/autoscaler.go): desired = ceil(average concurrency over the
 * window / target), stable window 60 s, panic window 6 s; panic starts when the panic-window count
 * reaches 2x the ready pods and holds the fleet from shrinking until a stable window passes without
 * panic; at most x1000 up and /2 down per decision. It scales the Deployment itself (no HPA).
 *
 * Example: 300 requests in flight on average over 60 s, target 20 per pod, 10 ready -> 15 pods.
 */
function kpaPolicy(target: number, kpa: KpaSettings): PolicyRuntime {
  const samples: { at: number; value: number }[] = [];
  let panicSince = Number.NaN;
  let maxPanicPods = 0;
  const sample: PeriodicTask = {
    periodSeconds: 1,
    phaseSeconds: 0.25,
    run: (context) => {
      samples.push({ at: context.nowSeconds, value: context.fleet.inflightRequests });
      const cutoff = context.nowSeconds - kpa.stableWindowSeconds;
      while (samples.length > 0 && (samples[0] as { at: number }).at <= cutoff) samples.shift();
    },
  };
  const average = (now: number, window: number) => {
    let sum = 0;
    let n = 0;
    for (let i = samples.length - 1; i >= 0; i--) {
      const s = samples[i] as { at: number; value: number };
      if (s.at <= now - window) break;
      sum += s.value;
      n++;
    }
    return n === 0 ? 0 : sum / n;
  };
  const decideTick: PeriodicTask = {
    periodSeconds: kpa.tickSeconds,
    phaseSeconds: 0.75,
    run: (context) => {
      const { fleet, nowSeconds: now } = context;
      const ready = Math.max(1, fleet.readyReplicas);
      const maxUp = Math.ceil(kpa.maxScaleUpRate * ready);
      const maxDown = Math.floor(ready / kpa.maxScaleDownRate);
      const stableRaw = Math.ceil(average(now, kpa.stableWindowSeconds) / target);
      const panicRaw = Math.ceil(average(now, kpa.panicWindowSeconds) / target);
      const stable = Math.min(Math.max(stableRaw, maxDown), maxUp);
      const panic = Math.min(Math.max(panicRaw, maxDown), maxUp);
      const overPanic = panicRaw / ready >= kpa.panicThreshold;
      if (overPanic) {
        // Entering panic remembers the ready pods: panic never scales below them.
        if (Number.isNaN(panicSince)) maxPanicPods = ready;
        panicSince = now;
      } else if (!Number.isNaN(panicSince) && now > panicSince + kpa.stableWindowSeconds) {
        panicSince = Number.NaN;
      }
      let desired: number;
      if (!Number.isNaN(panicSince)) {
        maxPanicPods = Math.max(maxPanicPods, panic, stable);
        desired = maxPanicPods;
      } else {
        maxPanicPods = 0;
        desired = stable;
      }
      fleet.scaleTo(desired, now);
    },
  };
  return { tasks: [sample, decideTick] };
}

export { DEFAULT_HPA_CONTROLLER_CONFIG };
