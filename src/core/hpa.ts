/**
 * @module core/hpa
 *
 * A pure emulation of the Kubernetes HorizontalPodAutoscaler controller (autoscaling/v2), as far as
 * it matters for a metrics adapter: how the HPA reads quantity strings, how it turns External,
 * Object and Pods metrics into replica proposals, its tolerance band, the multi-metric error rules,
 * the pre-checks (maintenance mode, out-of-range replicas), and the two normalisation paths
 * (legacy: 5-minute scale-down stabilisation plus the `max(2 x current, 4)` scale-up cap; with
 * `behavior`: stabilisation windows and rate-limit policies).
 *
 * Source of every rule: `reference/external-metrics-contract.md` §2.2 (quantities) and §5 (algorithm),
 * which cite kubernetes/kubernetes `pkg/controller/podautoscaler/{horizontal.go,replica_calculator.go}`.
 * Test vectors V1-V20 of §5.7 live in `hpa.test.ts`.
 *
 * Nothing here reads a clock: `nowSeconds` is an input and the controller memory (recommendation
 * history, scale events) is a value passed in and returned, so the simulator can step time.
 */
import { InvalidInputError } from '../errors.ts';

// ---------------------------------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------------------------------

const MAX_INT64 = 9_223_372_036_854_775_807n;
const MIN_INT64 = -9_223_372_036_854_775_808n;
const MAX_INT32 = 2_147_483_647;

/** `<sign><digits>[.<digits>]` or `.<digits>`, then an optional suffix (contract §2.2 grammar). */
const QUANTITY_PATTERN = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(.*)$/;

const BINARY_SUFFIX_EXPONENTS: Readonly<Record<string, bigint>> = {
  Ki: 10n,
  Mi: 20n,
  Gi: 30n,
  Ti: 40n,
  Pi: 50n,
  Ei: 60n,
};

const DECIMAL_SUFFIX_EXPONENTS: Readonly<Record<string, number>> = {
  n: -9,
  u: -6,
  m: -3,
  '': 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};

/**
 * What the HPA gets from `resource.MustParse(text).MilliValue()`: the quantity times 1000, rounded
 * away from zero, clamped to int64. Go parses quantities as fixed-point decimals (never floats) and
 * rounds non-zero values up to nano precision; rounding up to nano and then up to milli equals
 * rounding up to milli directly, so this computes `ceil(|x| x 1000)` exactly with BigInt.
 *
 * Worked example (V20): `"3.3000000000000003"` -> 3300.0000000000003 milli -> rounded up -> 3301;
 * `"3300m"` -> 3300. Results beyond 2^53 lose integer precision as JavaScript numbers; replica
 * arithmetic does not reach that range (the HPA caps replicas at int32 anyway).
 *
 * Throws `InvalidInputError` (field `quantity`) for text the Kubernetes parser rejects.
 */
export function quantityMilliValue(text: string): number {
  return Number(quantityMilliBigInt(text));
}

export function quantityMilliBigInt(text: string): bigint {
  const trimmed = text.trim();
  const match = QUANTITY_PATTERN.exec(trimmed);
  if (match === null) throw invalidQuantity(text, 'not a number followed by an optional suffix');
  const [, sign = '', number = '', suffix = ''] = match;
  const [whole = '', fraction = ''] = number.split('.');
  const mantissa = BigInt(`${whole}${fraction}` || '0');
  const negative = sign === '-';
  if (mantissa === 0n) {
    parseSuffix(suffix, text);
    return 0n;
  }
  const scale = parseSuffix(suffix, text);
  // value = mantissa x 10^-fraction.length x base^exponent; we want ceil(|value| x 1000).
  let milli: bigint;
  if (scale.base === 10) {
    const power = 3 - fraction.length + scale.exponent;
    const mantissaDigits = mantissa.toString().length;
    // More than 19 digits after scaling is beyond int64, and a divisor longer than the mantissa
    // leaves less than one milli-unit (rounded up to 1): decide both without computing 10^power,
    // so a hostile "1e999" costs nothing.
    if (power >= 0) milli = mantissaDigits + power > 19 ? MAX_INT64 + 1n : mantissa * 10n ** BigInt(power);
    else milli = -power > mantissaDigits ? 1n : ceilDiv(mantissa, 10n ** BigInt(-power));
  } else {
    milli = ceilDiv(mantissa * 1000n * (1n << scale.exponentBig), 10n ** BigInt(fraction.length));
  }
  const signed = negative ? -milli : milli;
  if (signed > MAX_INT64) return MAX_INT64;
  if (signed < MIN_INT64) return MIN_INT64;
  return signed;
}

type QuantityScale = { base: 10; exponent: number } | { base: 2; exponentBig: bigint };

function parseSuffix(suffix: string, text: string): QuantityScale {
  const binary = BINARY_SUFFIX_EXPONENTS[suffix];
  if (binary !== undefined) return { base: 2, exponentBig: binary };
  const decimal = DECIMAL_SUFFIX_EXPONENTS[suffix];
  if (decimal !== undefined) return { base: 10, exponent: decimal };
  const exponent = /^[eE]([+-]?\d+)$/.exec(suffix);
  if (exponent?.[1] !== undefined) {
    const value = Number.parseInt(exponent[1], 10);
    // Clamp absurd exponents; they only matter as "too big" or "smaller than a milli-unit".
    return { base: 10, exponent: Math.max(-1000, Math.min(1000, value)) };
  }
  throw invalidQuantity(
    text,
    `suffix "${suffix}" is not one of Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or e<integer>`,
  );
}

function ceilDiv(numerator: bigint, denominator: bigint): bigint {
  const quotient = numerator / denominator;
  return quotient * denominator === numerator ? quotient : quotient + 1n;
}

function invalidQuantity(text: string, why: string): InvalidInputError {
  return new InvalidInputError('quantity', `${JSON.stringify(text)} is not a Kubernetes quantity: ${why}`);
}

/** The HPA sums item milli-values with int64 saturation (contract §5.3). */
export function sumMilli(values: readonly number[]): number {
  let total = 0n;
  for (const value of values) total += BigInt(Math.trunc(value));
  if (total > MAX_INT64) return Number(MAX_INT64);
  if (total < MIN_INT64) return Number(MIN_INT64);
  return Number(total);
}

// ---------------------------------------------------------------------------------------------
// Spec, status and controller configuration
// ---------------------------------------------------------------------------------------------

export type HpaMetricTarget =
  | { type: 'AverageValue'; averageValueMilli: number }
  | { type: 'Value'; valueMilli: number };

export type HpaMetricSpec =
  | { type: 'External'; name: string; target: HpaMetricTarget }
  | { type: 'Object'; name: string; target: HpaMetricTarget }
  | { type: 'Pods'; name: string; target: { type: 'AverageValue'; averageValueMilli: number } };

export interface HpaScalingPolicy {
  type: 'Pods' | 'Percent';
  value: number;
  periodSeconds: number;
}

export type HpaSelectPolicy = 'Max' | 'Min' | 'Disabled';

/** `spec.behavior.scaleUp` / `scaleDown` as written; unset fields take the API defaults. */
export interface HpaScalingRules {
  stabilizationWindowSeconds?: number;
  selectPolicy?: HpaSelectPolicy;
  policies?: readonly HpaScalingPolicy[];
  /** KEP-4951 per-HPA tolerance; honoured only when the controller has the feature gate on. */
  tolerance?: number;
}

export interface HpaBehavior {
  scaleUp?: HpaScalingRules;
  scaleDown?: HpaScalingRules;
}

export interface HpaSpec {
  /** Defaults to 1. 0 needs the HPAScaleToZero gate and an Object or External metric. */
  minReplicas?: number;
  maxReplicas: number;
  metrics: readonly HpaMetricSpec[];
  /** Absent: the legacy normalisation path. `{}`: every default of `behavior` (contract §5.5). */
  behavior?: HpaBehavior;
}

/** kube-controller-manager flags and feature gates that change the arithmetic (contract §5.1). */
export interface HpaControllerConfig {
  /** `--horizontal-pod-autoscaler-tolerance`. */
  tolerance: number;
  /** `--horizontal-pod-autoscaler-downscale-stabilization`, seconds. */
  downscaleStabilizationSeconds: number;
  /** Feature gate HPAConfigurableTolerance (beta and on by default from 1.35). */
  configurableTolerance: boolean;
}

export const DEFAULT_HPA_CONTROLLER_CONFIG: HpaControllerConfig = {
  tolerance: 0.1,
  downscaleStabilizationSeconds: 300,
  configurableTolerance: true,
};

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export interface HpaPod {
  name: string;
  phase: PodPhase;
  /** The pod's Ready condition. */
  ready: boolean;
  /** A deletion timestamp is set. */
  deleting?: boolean;
}

/** What one metric read returned this sync. */
export type HpaMetricReading =
  /** External items (all summed) or the Object metric's items (exactly one expected). */
  | { kind: 'values'; valuesMilli: readonly number[] }
  /** Pods metric: one value per pod name. */
  | { kind: 'pod-values'; byPod: Readonly<Record<string, number>> }
  /** The metrics API answered with an error (e.g. a 404 or 503 Status), or timed out. */
  | { kind: 'error'; message: string };

export interface HpaObservation {
  /** `scale.spec.replicas`. */
  specReplicas: number;
  /** `scale.status.replicas`: pods that exist, ready or not. */
  statusReplicas: number;
  /** Pods matched by the scale selector; needed by Value targets and Pods metrics. */
  pods?: readonly HpaPod[];
  /** One reading per entry of `spec.metrics`, same order. */
  readings: readonly HpaMetricReading[];
}

interface TimestampedRecommendation {
  replicas: number;
  atSeconds: number;
}

interface TimestampedScaleEvent {
  replicaChange: number;
  atSeconds: number;
}

/** The controller's in-memory state for one HPA (lost when kube-controller-manager restarts). */
export interface HpaState {
  recommendations: readonly TimestampedRecommendation[];
  scaleUpEvents: readonly TimestampedScaleEvent[];
  scaleDownEvents: readonly TimestampedScaleEvent[];
}

/** A fresh HPA, or one seen for the first time after a controller restart. */
export function initialHpaState(): HpaState {
  return { recommendations: [], scaleUpEvents: [], scaleDownEvents: [] };
}

/** A metric's replica proposal, or why the HPA could not compute one (`reason` as in its condition). */
export type MetricProposal = { replicas: number } | { error: string; reason: string };

export interface HpaCondition {
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export interface HpaReconcileResult {
  desiredReplicas: number;
  /** True when the HPA writes `desiredReplicas` to the scale subresource this sync. */
  rescale: boolean;
  state: HpaState;
  conditions: {
    AbleToScale?: HpaCondition;
    ScalingActive?: HpaCondition;
    ScalingLimited?: HpaCondition;
  };
  /** Per metric: the replica proposal, or the error that invalidated it. */
  proposals: readonly MetricProposal[];
  /** Set when some metric was invalid (the HPA emits FailedComputeMetricsReplicas / records the error). */
  error?: string;
}

// ---------------------------------------------------------------------------------------------
// Tolerance and per-metric replica calculations (replica_calculator.go)
// ---------------------------------------------------------------------------------------------

export interface Tolerances {
  scaleUp: number;
  scaleDown: number;
}

/**
 * Inclusive band `[1 - scaleDown, 1 + scaleUp]` (contract §5.4). In IEEE doubles, as in Go,
 * 11000 / (1000 x 10) is exactly the double 1.1 and 1.0 + 0.1 is that same double, so V3 is within.
 */
export function isWithinTolerance(usageRatio: number, tolerances: Tolerances): boolean {
  return 1.0 - tolerances.scaleDown <= usageRatio && usageRatio <= 1.0 + tolerances.scaleUp;
}

function ceilToInt32(value: number): number {
  const ceiled = Math.ceil(value);
  if (Number.isNaN(ceiled)) return 0;
  return Math.min(MAX_INT32, ceiled);
}

/**
 * External or Object metric with an `AverageValue` target (GetExternalPerPodMetricReplicas):
 * `ratio = usage / (target x statusReplicas)`; outside the band the proposal is
 * `ceil(usage / target)`, inside it stays at `statusReplicas`.
 *
 * Worked example (V1): usage 1 250 000 milli, target 100 000, 10 replicas -> ratio 1.25 -> ceil(12.5) = 13.
 */
export function perPodTargetReplicas(
  usageMilli: number,
  targetAverageMilli: number,
  statusReplicas: number,
  tolerances: Tolerances,
): { replicas: number; currentAverageMilli: number } {
  const usageRatio = usageMilli / (targetAverageMilli * statusReplicas);
  const replicas = isWithinTolerance(usageRatio, tolerances)
    ? statusReplicas
    : ceilToInt32(usageMilli / targetAverageMilli);
  return { replicas, currentAverageMilli: Math.ceil(usageMilli / statusReplicas) };
}

/**
 * External or Object metric with a `Value` target (getUsageRatioReplicaCount): the ratio scales
 * the number of Running+Ready pods, or itself when the target is at zero replicas (scale from zero).
 *
 * Worked example (V9): 1500 / 1000 = 1.5 with 2 of 4 pods ready -> ceil(3.0) = 3, a scale-down
 * proposal although load rose; prefer AverageValue targets for slow-starting GPU pods.
 */
export function usageRatioReplicas(
  usageRatio: number,
  specReplicas: number,
  pods: readonly HpaPod[] | undefined,
  tolerances: Tolerances,
): { replicas: number } | { error: string } {
  if (specReplicas === 0) return { replicas: ceilToInt32(usageRatio) };
  if (isWithinTolerance(usageRatio, tolerances)) return { replicas: specReplicas };
  if (pods === undefined || pods.length === 0) {
    return { error: 'no pods returned by selector while calculating replica count' };
  }
  const ready = pods.filter((pod) => pod.phase === 'Running' && pod.ready).length;
  return { replicas: ceilToInt32(usageRatio * ready) };
}

/**
 * Pods metric with an AverageValue target (calcPlainMetricReplicas for non-CPU metrics): ignored
 * pods (deleting or Failed) drop out; Pending pods are unready; pods without a sample are missing.
 * Missing pods count as 0 on a scale-up and as exactly the target on a scale-down; unready pods
 * count as 0 on a scale-up. No change when the recomputed ratio is inside the band or flips direction.
 *
 * Worked example (V18): A, B, C at 150, D missing, target 100 -> ratio 1.5 (scale-up) -> D counts
 * as 0 -> average 450/4 = 112.5 -> ratio 1.125 -> ceil(1.125 x 4) = 5.
 */
export function podsMetricReplicas(
  byPod: Readonly<Record<string, number>>,
  targetAverageMilli: number,
  specReplicas: number,
  pods: readonly HpaPod[] | undefined,
  tolerances: Tolerances,
): { replicas: number } | { error: string } {
  if (pods === undefined || pods.length === 0) {
    return { error: 'no pods returned by selector while calculating replica count' };
  }
  const metrics = new Map<string, number>();
  const unready: string[] = [];
  const missing: string[] = [];
  let readyPodCount = 0;
  for (const pod of pods) {
    if (pod.deleting === true || pod.phase === 'Failed') continue;
    if (pod.phase === 'Pending') {
      unready.push(pod.name);
      continue;
    }
    const value = byPod[pod.name];
    if (value === undefined) {
      missing.push(pod.name);
      continue;
    }
    metrics.set(pod.name, value);
    readyPodCount += 1;
  }
  if (metrics.size === 0) {
    return { error: 'did not receive metrics for targeted pods (pods might be unready)' };
  }
  const usageRatio = averageRatio(metrics, targetAverageMilli);
  const scaleUpWithUnready = unready.length > 0 && usageRatio > 1.0;
  if (!scaleUpWithUnready && missing.length === 0) {
    if (isWithinTolerance(usageRatio, tolerances)) return { replicas: specReplicas };
    return { replicas: ceilToInt32(usageRatio * readyPodCount) };
  }
  for (const name of missing) metrics.set(name, usageRatio < 1.0 ? targetAverageMilli : 0);
  if (scaleUpWithUnready) for (const name of unready) metrics.set(name, 0);
  const newUsageRatio = averageRatio(metrics, targetAverageMilli);
  if (
    isWithinTolerance(newUsageRatio, tolerances) ||
    (usageRatio < 1.0 && newUsageRatio > 1.0) ||
    (usageRatio > 1.0 && newUsageRatio < 1.0)
  ) {
    return { replicas: specReplicas };
  }
  const newReplicas = ceilToInt32(newUsageRatio * metrics.size);
  if (
    (newUsageRatio < 1.0 && newReplicas > specReplicas) ||
    (newUsageRatio > 1.0 && newReplicas < specReplicas)
  ) {
    return { replicas: specReplicas };
  }
  return { replicas: newReplicas };
}

/** GetMetricUsageRatio: integer mean of the per-pod milli-values over the target. */
function averageRatio(metrics: ReadonlyMap<string, number>, targetMilli: number): number {
  let total = 0;
  for (const value of metrics.values()) total += value;
  const currentUsage = Math.trunc(total / metrics.size);
  return currentUsage / targetMilli;
}

function proposalForMetric(
  metric: HpaMetricSpec,
  reading: HpaMetricReading | undefined,
  observation: HpaObservation,
  tolerances: Tolerances,
): MetricProposal {
  const reason =
    metric.type === 'External'
      ? 'FailedGetExternalMetric'
      : metric.type === 'Object'
        ? 'FailedGetObjectMetric'
        : 'FailedGetPodsMetric';
  const result = rawProposalForMetric(metric, reading, observation, tolerances);
  return 'error' in result ? { error: result.error, reason } : result;
}

function rawProposalForMetric(
  metric: HpaMetricSpec,
  reading: HpaMetricReading | undefined,
  observation: HpaObservation,
  tolerances: Tolerances,
): { replicas: number } | { error: string } {
  if (reading === undefined) return { error: `no reading for metric ${metric.name}` };
  if (reading.kind === 'error') return { error: reading.message };
  if (metric.type === 'Pods') {
    if (reading.kind !== 'pod-values') return { error: `metric ${metric.name}: expected per-pod values` };
    return podsMetricReplicas(
      reading.byPod,
      metric.target.averageValueMilli,
      observation.specReplicas,
      observation.pods,
      tolerances,
    );
  }
  if (reading.kind !== 'values') return { error: `metric ${metric.name}: expected metric values` };
  if (reading.valuesMilli.length === 0) {
    return {
      error:
        metric.type === 'External'
          ? 'no metrics returned from external metrics API'
          : 'no metrics returned from custom metrics API',
    };
  }
  if (metric.type === 'Object' && reading.valuesMilli.length !== 1) {
    return { error: `returned ${reading.valuesMilli.length} results when we asked for exactly one` };
  }
  const usageMilli = sumMilli(reading.valuesMilli);
  if (metric.target.type === 'AverageValue') {
    const { replicas } = perPodTargetReplicas(
      usageMilli,
      metric.target.averageValueMilli,
      observation.statusReplicas,
      tolerances,
    );
    return { replicas };
  }
  return usageRatioReplicas(
    usageMilli / metric.target.valueMilli,
    observation.specReplicas,
    observation.pods,
    tolerances,
  );
}

// ---------------------------------------------------------------------------------------------
// Behavior defaults (pkg/apis/autoscaling/v2/defaults.go)
// ---------------------------------------------------------------------------------------------

interface ResolvedScalingRules {
  stabilizationWindowSeconds: number;
  selectPolicy: HpaSelectPolicy;
  policies: readonly HpaScalingPolicy[];
}

const DEFAULT_SCALE_UP_POLICIES: readonly HpaScalingPolicy[] = [
  { type: 'Pods', value: 4, periodSeconds: 15 },
  { type: 'Percent', value: 100, periodSeconds: 15 },
];
const DEFAULT_SCALE_DOWN_POLICIES: readonly HpaScalingPolicy[] = [
  { type: 'Percent', value: 100, periodSeconds: 15 },
];

function resolveScaleUp(rules: HpaScalingRules | undefined): ResolvedScalingRules {
  return {
    stabilizationWindowSeconds: rules?.stabilizationWindowSeconds ?? 0,
    selectPolicy: rules?.selectPolicy ?? 'Max',
    policies: rules?.policies ?? DEFAULT_SCALE_UP_POLICIES,
  };
}

/** The scale-down window is left unset by API defaulting and filled from the controller flag at run time. */
function resolveScaleDown(
  rules: HpaScalingRules | undefined,
  config: HpaControllerConfig,
): ResolvedScalingRules {
  return {
    stabilizationWindowSeconds: rules?.stabilizationWindowSeconds ?? config.downscaleStabilizationSeconds,
    selectPolicy: rules?.selectPolicy ?? 'Max',
    policies: rules?.policies ?? DEFAULT_SCALE_DOWN_POLICIES,
  };
}

export function tolerancesForHpa(spec: HpaSpec, config: HpaControllerConfig): Tolerances {
  const tolerances = { scaleUp: config.tolerance, scaleDown: config.tolerance };
  if (spec.behavior === undefined || !config.configurableTolerance) return tolerances;
  return {
    scaleUp: spec.behavior.scaleUp?.tolerance ?? tolerances.scaleUp,
    scaleDown: spec.behavior.scaleDown?.tolerance ?? tolerances.scaleDown,
  };
}

// ---------------------------------------------------------------------------------------------
// Reconcile (horizontal.go reconcileAutoscaler)
// ---------------------------------------------------------------------------------------------

/**
 * One HPA sync at `nowSeconds`. Returns the replicas the HPA would write and its next state.
 *
 * Worked example (V6): AverageValue 100, item "420", 10 replicas, fresh HPA. The history is seeded
 * with the current 10; the proposal is ceil(4.2) = 5; the legacy path takes the maximum of the last
 * 300 s of recommendations, {10, 5} -> 10. Fifteen seconds after the seed has aged past 300 s, the
 * maximum is 5 and the HPA scales down.
 */
export function reconcileHpa(
  spec: HpaSpec,
  observation: HpaObservation,
  previous: HpaState,
  nowSeconds: number,
  config: HpaControllerConfig = DEFAULT_HPA_CONTROLLER_CONFIG,
): HpaReconcileResult {
  const currentReplicas = observation.specReplicas;
  const minReplicas = spec.minReplicas ?? 1;
  const state: MutableHpaState = {
    recommendations: [...previous.recommendations],
    scaleUpEvents: [...previous.scaleUpEvents],
    scaleDownEvents: [...previous.scaleDownEvents],
  };
  // recordInitialRecommendation: a new HPA (or a restarted controller) remembers the current size.
  if (state.recommendations.length === 0) {
    state.recommendations.push({ replicas: currentReplicas, atSeconds: nowSeconds });
  }
  const conditions: HpaReconcileResult['conditions'] = {};

  if (currentReplicas === 0 && minReplicas !== 0) {
    conditions.ScalingActive = {
      status: 'False',
      reason: 'ScalingDisabled',
      message: 'scaling is disabled since the replica count of the target is zero',
    };
    return { desiredReplicas: 0, rescale: false, state, conditions, proposals: [] };
  }
  if (currentReplicas > spec.maxReplicas || currentReplicas < minReplicas) {
    const desiredReplicas = currentReplicas > spec.maxReplicas ? spec.maxReplicas : minReplicas;
    recordScaleEvent(spec, state, currentReplicas, desiredReplicas, nowSeconds, config);
    return { desiredReplicas, rescale: true, state, conditions, proposals: [] };
  }

  const tolerances = tolerancesForHpa(spec, config);
  const proposals = spec.metrics.map((metric, index) =>
    proposalForMetric(metric, observation.readings[index], observation, tolerances),
  );
  let metricReplicas = 0;
  let invalid = 0;
  let firstInvalid: { error: string; reason: string } | undefined;
  for (const proposal of proposals) {
    if ('error' in proposal) {
      invalid += 1;
      firstInvalid ??= proposal;
    } else if (metricReplicas === 0 || proposal.replicas > metricReplicas) {
      metricReplicas = proposal.replicas;
    }
  }
  const error =
    firstInvalid === undefined
      ? undefined
      : `invalid metrics (${invalid} invalid out of ${spec.metrics.length}), first error is: ${firstInvalid.error}`;
  // All metrics invalid, or some invalid and the valid ones would scale down: hold (PR #99514).
  if (invalid >= spec.metrics.length || (invalid > 0 && metricReplicas < currentReplicas)) {
    conditions.ScalingActive = {
      status: 'False',
      reason: firstInvalid?.reason ?? 'InvalidMetricSourceType',
      message: `the HPA was unable to compute the replica count: ${firstInvalid?.error ?? 'no metrics are configured'}`,
    };
    return {
      desiredReplicas: currentReplicas,
      rescale: false,
      state,
      conditions,
      proposals,
      ...withError(error),
    };
  }
  conditions.ScalingActive = {
    status: 'True',
    reason: 'ValidMetricFound',
    message: 'the HPA was able to successfully calculate a replica count',
  };

  const desiredReplicas =
    spec.behavior === undefined
      ? normalizeLegacy(
          spec,
          state,
          currentReplicas,
          metricReplicas,
          minReplicas,
          nowSeconds,
          config,
          conditions,
        )
      : normalizeWithBehaviors(
          spec,
          state,
          currentReplicas,
          metricReplicas,
          minReplicas,
          nowSeconds,
          config,
          conditions,
        );
  const rescale = desiredReplicas !== currentReplicas;
  if (rescale) recordScaleEvent(spec, state, currentReplicas, desiredReplicas, nowSeconds, config);
  return { desiredReplicas, rescale, state, conditions, proposals, ...withError(error) };
}

function withError(error: string | undefined): { error?: string } {
  return error === undefined ? {} : { error };
}

interface MutableHpaState {
  recommendations: TimestampedRecommendation[];
  scaleUpEvents: TimestampedScaleEvent[];
  scaleDownEvents: TimestampedScaleEvent[];
}

/**
 * Store the new recommendation, overwriting the newest sample that has aged out of every window
 * (the controller keeps the slice short this way rather than pruning).
 */
function storeRecommendation(
  state: MutableHpaState,
  oldSampleIndex: number | undefined,
  replicas: number,
  nowSeconds: number,
): void {
  const sample = { replicas, atSeconds: nowSeconds };
  if (oldSampleIndex === undefined) state.recommendations.push(sample);
  else state.recommendations[oldSampleIndex] = sample;
}

function normalizeLegacy(
  spec: HpaSpec,
  state: MutableHpaState,
  currentReplicas: number,
  proposed: number,
  minReplicas: number,
  nowSeconds: number,
  config: HpaControllerConfig,
  conditions: HpaReconcileResult['conditions'],
): number {
  // stabilizeRecommendation: the highest recommendation of the last window (only damps scale-down).
  const cutoff = nowSeconds - config.downscaleStabilizationSeconds;
  let stabilized = proposed;
  let oldSampleIndex: number | undefined;
  state.recommendations.forEach((rec, index) => {
    if (rec.atSeconds < cutoff) oldSampleIndex = index;
    else if (rec.replicas > stabilized) stabilized = rec.replicas;
  });
  storeRecommendation(state, oldSampleIndex, proposed, nowSeconds);
  conditions.AbleToScale =
    stabilized !== proposed
      ? {
          status: 'True',
          reason: 'ScaleDownStabilized',
          message:
            'recent recommendations were higher than current one, applying the highest recent recommendation',
        }
      : { status: 'True', reason: 'ReadyForNewScale', message: 'recommended size matches current size' };

  // convertDesiredReplicasWithRules: clamp, and cap a single scale-up at max(2 x current, 4).
  const scaleUpLimit = Math.max(2 * currentReplicas, 4);
  let maximum = spec.maxReplicas;
  let limitReason = 'TooManyReplicas';
  let limitMessage = 'the desired replica count is more than the maximum replica count';
  if (spec.maxReplicas > scaleUpLimit) {
    maximum = scaleUpLimit;
    limitReason = 'ScaleUpLimit';
    limitMessage = 'the desired replica count is increasing faster than the maximum scale rate';
  }
  let desired = stabilized;
  if (stabilized < minReplicas) {
    desired = minReplicas;
    limitReason = 'TooFewReplicas';
    limitMessage = 'the desired replica count is less than the minimum replica count';
  } else if (stabilized > maximum) {
    desired = maximum;
  } else {
    limitReason = 'DesiredWithinRange';
    limitMessage = 'the desired count is within the acceptable range';
  }
  conditions.ScalingLimited = {
    status: desired === stabilized ? 'False' : 'True',
    reason: limitReason,
    message: limitMessage,
  };
  return desired;
}

function normalizeWithBehaviors(
  spec: HpaSpec,
  state: MutableHpaState,
  currentReplicas: number,
  proposed: number,
  minReplicas: number,
  nowSeconds: number,
  config: HpaControllerConfig,
  conditions: HpaReconcileResult['conditions'],
): number {
  const scaleUp = resolveScaleUp(spec.behavior?.scaleUp);
  const scaleDown = resolveScaleDown(spec.behavior?.scaleDown, config);

  // stabilizeRecommendationWithBehaviors: the lowest recommendation of the scale-up window caps
  // scale-up, the highest of the scale-down window caps scale-down. Samples strictly after the
  // cutoff count, so a window of 0 sees none of the history.
  const upCutoff = nowSeconds - scaleUp.stabilizationWindowSeconds;
  const downCutoff = nowSeconds - scaleDown.stabilizationWindowSeconds;
  let upRecommendation = proposed;
  let downRecommendation = proposed;
  let oldSampleIndex: number | undefined;
  state.recommendations.forEach((rec, index) => {
    if (rec.atSeconds > upCutoff) upRecommendation = Math.min(rec.replicas, upRecommendation);
    if (rec.atSeconds > downCutoff) downRecommendation = Math.max(rec.replicas, downRecommendation);
    if (rec.atSeconds < upCutoff && rec.atSeconds < downCutoff) oldSampleIndex = index;
  });
  let stabilized = currentReplicas;
  if (stabilized < upRecommendation) stabilized = upRecommendation;
  if (stabilized > downRecommendation) stabilized = downRecommendation;
  storeRecommendation(state, oldSampleIndex, proposed, nowSeconds);
  if (stabilized !== proposed) {
    conditions.AbleToScale =
      proposed >= currentReplicas
        ? {
            status: 'True',
            reason: 'ScaleUpStabilized',
            message:
              'recent recommendations were lower than current one, applying the lowest recent recommendation',
          }
        : {
            status: 'True',
            reason: 'ScaleDownStabilized',
            message:
              'recent recommendations were higher than current one, applying the highest recent recommendation',
          };
  } else {
    conditions.AbleToScale = {
      status: 'True',
      reason: 'ReadyForNewScale',
      message: 'recommended size matches current size',
    };
  }

  const limited = convertWithBehaviorRate(
    state,
    scaleUp,
    scaleDown,
    currentReplicas,
    stabilized,
    minReplicas,
    {
      maxReplicas: spec.maxReplicas,
      nowSeconds,
    },
  );
  conditions.ScalingLimited = {
    status: limited.replicas === stabilized ? 'False' : 'True',
    reason: limited.reason,
    message: limited.message,
  };
  return limited.replicas;
}

function convertWithBehaviorRate(
  state: MutableHpaState,
  scaleUp: ResolvedScalingRules,
  scaleDown: ResolvedScalingRules,
  currentReplicas: number,
  desired: number,
  minReplicas: number,
  context: { maxReplicas: number; nowSeconds: number },
): { replicas: number; reason: string; message: string } {
  if (desired > currentReplicas) {
    let scaleUpLimit = scaleUpLimitWithRules(currentReplicas, state, scaleUp, context.nowSeconds);
    // Events still inside their period can push the limit below the current size: hold, never shrink.
    if (scaleUpLimit < currentReplicas) scaleUpLimit = currentReplicas;
    if (context.maxReplicas > scaleUpLimit) {
      if (desired > scaleUpLimit) {
        return {
          replicas: scaleUpLimit,
          reason: 'ScaleUpLimit',
          message: 'the desired replica count is increasing faster than the maximum scale rate',
        };
      }
    } else if (desired > context.maxReplicas) {
      return {
        replicas: context.maxReplicas,
        reason: 'TooManyReplicas',
        message: 'the desired replica count is more than the maximum replica count',
      };
    }
  } else if (desired < currentReplicas) {
    let scaleDownLimit = scaleDownLimitWithRules(currentReplicas, state, scaleDown, context.nowSeconds);
    if (scaleDownLimit > currentReplicas) scaleDownLimit = currentReplicas;
    if (minReplicas < scaleDownLimit) {
      if (desired < scaleDownLimit) {
        return {
          replicas: scaleDownLimit,
          reason: 'ScaleDownLimit',
          message: 'the desired replica count is decreasing faster than the maximum scale rate',
        };
      }
    } else if (desired < minReplicas) {
      return {
        replicas: minReplicas,
        reason: 'TooFewReplicas',
        message: 'the desired replica count is less than the minimum replica count',
      };
    }
  }
  return {
    replicas: desired,
    reason: 'DesiredWithinRange',
    message: 'the desired count is within the acceptable range',
  };
}

/** Replicas added (or removed) by events strictly newer than `now - periodSeconds`. */
function changeInPeriod(
  events: readonly TimestampedScaleEvent[],
  periodSeconds: number,
  nowSeconds: number,
): number {
  const cutoff = nowSeconds - periodSeconds;
  let change = 0;
  for (const event of events) if (event.atSeconds > cutoff) change += event.replicaChange;
  return change;
}

/**
 * Worked example (V11): `behavior: {}` at 2 replicas. Pods policy: 2 + 4 = 6; Percent policy:
 * ceil(2 x 2) = 4; selectPolicy Max takes 6.
 */
function scaleUpLimitWithRules(
  currentReplicas: number,
  state: MutableHpaState,
  rules: ResolvedScalingRules,
  nowSeconds: number,
): number {
  if (rules.selectPolicy === 'Disabled') return currentReplicas;
  const pick = rules.selectPolicy === 'Min' ? Math.min : Math.max;
  let result = rules.selectPolicy === 'Min' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  for (const policy of rules.policies) {
    const periodStart =
      currentReplicas -
      changeInPeriod(state.scaleUpEvents, policy.periodSeconds, nowSeconds) +
      changeInPeriod(state.scaleDownEvents, policy.periodSeconds, nowSeconds);
    const proposed =
      policy.type === 'Pods' ? periodStart + policy.value : Math.ceil(periodStart * (1 + policy.value / 100));
    result = pick(result, proposed);
  }
  return Number.isFinite(result) ? result : currentReplicas;
}

/**
 * Worked example (V12): policies [Pods 4/60s, Percent 10/60s] at 80 replicas. Pods: 80 - 4 = 76;
 * Percent: trunc(80 x 0.9) = 72; selectPolicy Max means the largest change, the smallest count: 72.
 */
function scaleDownLimitWithRules(
  currentReplicas: number,
  state: MutableHpaState,
  rules: ResolvedScalingRules,
  nowSeconds: number,
): number {
  if (rules.selectPolicy === 'Disabled') return currentReplicas;
  const pick = rules.selectPolicy === 'Min' ? Math.max : Math.min;
  let result = rules.selectPolicy === 'Min' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  for (const policy of rules.policies) {
    const periodStart =
      currentReplicas -
      changeInPeriod(state.scaleUpEvents, policy.periodSeconds, nowSeconds) +
      changeInPeriod(state.scaleDownEvents, policy.periodSeconds, nowSeconds);
    const proposed =
      policy.type === 'Pods'
        ? periodStart - policy.value
        : Math.trunc(periodStart * (1 - policy.value / 100));
    result = pick(result, proposed);
  }
  return Number.isFinite(result) ? result : currentReplicas;
}

/**
 * storeScaleEvent: only HPAs with `behavior` keep scale events. The newest event that has aged out
 * of the longest policy period is overwritten, as the controller does, so the lists stay short.
 */
function recordScaleEvent(
  spec: HpaSpec,
  state: MutableHpaState,
  previousReplicas: number,
  newReplicas: number,
  nowSeconds: number,
  config: HpaControllerConfig,
): void {
  if (spec.behavior === undefined || newReplicas === previousReplicas) return;
  const up = newReplicas > previousReplicas;
  const rules = up
    ? resolveScaleUp(spec.behavior.scaleUp)
    : resolveScaleDown(spec.behavior.scaleDown, config);
  const longestPeriod = Math.max(0, ...rules.policies.map((policy) => policy.periodSeconds));
  const cutoff = nowSeconds - longestPeriod;
  const events = up ? state.scaleUpEvents : state.scaleDownEvents;
  let oldIndex: number | undefined;
  events.forEach((event, index) => {
    if (event.atSeconds < cutoff) oldIndex = index;
  });
  const event = { replicaChange: Math.abs(newReplicas - previousReplicas), atSeconds: nowSeconds };
  if (oldIndex === undefined) events.push(event);
  else events[oldIndex] = event;
}
