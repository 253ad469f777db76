/**
 * @module What an engine profile asks for, and what a collector hands back.
 *
 * A profile declares its readings (which series, which kind of arithmetic) once; two collectors
 * evaluate them: `scrape-collector.ts` over `/metrics` payloads with its own counter windows, and
 * `prometheus-collector.ts` by generating PromQL. Both return per-pod values, and the profile's
 * `derive` turns them into an Observation with the same code whichever path produced them. That is
 * what lets the integration test demand that both paths agree.
 *
 * Pods: on the scrape path a pod is an endpoint URL; on the PromQL path it is the value of the pod
 * label (`instance` by default, the label Prometheus gives every target).
 */
import type { ObservationSignal, SignalProvenance, TokenPercentiles } from '../core/observation.ts';
import type { Labels } from './exposition-parser.ts';
import { type Bucket, bucketQuantile } from './histogram.ts';

/** One metric, optionally narrowed by label equality (e.g. `kv_cache_block_type="used"`). */
export interface SeriesRef {
  readonly metric: string;
  readonly match?: Readonly<Record<string, string>>;
}

/**
 * `sources` are alternatives in order of preference, for renames across engine versions (vLLM
 * `kv_cache_usage_perc` before `gpu_cache_usage_perc`): per pod (per series in PromQL) the first one
 * present is used.
 */
export type Reading =
  | {
      readonly kind: 'gauge';
      readonly sources: readonly SeriesRef[];
      /** How the series of one pod combine: engines of a data-parallel pod add up; ratios average. */
      readonly perPod: 'sum' | 'mean' | 'max';
      /**
       * Labels whose series repeat the same figure (SGLang reports one copy per tensor-parallel rank):
       * the maximum over them is taken first, so a TP=4 pod is not counted four times.
       */
      readonly collapse?: readonly string[];
    }
  | {
      /** Per-second increase of counters (or of a histogram's `_sum` / `_count`), summed per pod. */
      readonly kind: 'rate';
      readonly sources: readonly SeriesRef[];
    }
  | {
      /** A classic histogram, by its base name (without `_bucket`): fleet bucket rates and sum/count rates. */
      readonly kind: 'histogram';
      readonly sources: readonly SeriesRef[];
    }
  | {
      /** Numbers carried in labels of an info-style gauge (vLLM `cache_config_info`). */
      readonly kind: 'info';
      readonly source: SeriesRef;
    };

export type ReadingSet = Readonly<Record<string, Reading>>;

/** Fleet rates of one histogram over the rate window. */
export interface HistogramRates {
  readonly buckets: readonly Bucket[];
  readonly sumPerSecond: number | undefined;
  readonly countPerSecond: number | undefined;
}

export type PerPod = ReadonlyMap<string, number>;

export interface ReadingResults {
  /** Pods that exposed at least one of the profile's presence metrics. */
  readonly pods: readonly string[];
  /** Gauge and rate readings: one figure per pod that had the series. */
  perPod(name: string): PerPod;
  histogram(name: string): HistogramRates | undefined;
  info(name: string): ReadonlyMap<string, readonly Labels[]>;
}

/** Fleet figures before `observedAtSeconds` and `podsReporting` are added. */
export type DerivedObservation = {
  -readonly [K in ObservationSignal]?: import('../core/observation.ts').Observation[K];
} & {
  provenance: Partial<Record<ObservationSignal, SignalProvenance>>;
};

/** Collects fields with their provenance; undefined or non-finite figures are left out (not measured). */
export class ObservationBuilder {
  readonly result: DerivedObservation = { provenance: {} };

  measured(signal: NumericSignal, value: number | undefined): this {
    return this.set(signal, value, 'measured');
  }

  estimated(signal: NumericSignal, value: number | undefined): this {
    return this.set(signal, value, 'estimated');
  }

  set(signal: NumericSignal, value: number | undefined, provenance: SignalProvenance): this {
    if (value === undefined || !Number.isFinite(value)) return this;
    this.result[signal] = value;
    this.result.provenance[signal] = provenance;
    return this;
  }

  /**
   * In-flight and waiting tokens for engines without token gauges (vLLM, SGLang, TRT-LLM): both
   * estimated from request counts, mean request sizes and the tokens held in KV (see
   * estimateInflightTokens); waiting tokens are the waiting requests' mean prompts.
   */
  requestTokenEstimates(input: {
    runningRequests: number | undefined;
    waitingRequests: number | undefined;
    meanInputTokens: number | undefined;
    meanOutputTokens: number | undefined;
    kvTokensInUse: number | undefined;
  }): this {
    return this.estimated('inflightTokens', estimateInflightTokens(input)).estimated(
      'waitingTokens',
      requestTokens(input.waitingRequests, input.meanInputTokens),
    );
  }

  percentiles(
    signal: 'requestInputTokens' | 'requestOutputTokens',
    value: TokenPercentiles | undefined,
    provenance: SignalProvenance = 'measured',
  ): this {
    if (value === undefined) return this;
    this.result[signal] = value;
    this.result.provenance[signal] = provenance;
    return this;
  }
}

export type NumericSignal = Exclude<ObservationSignal, 'requestInputTokens' | 'requestOutputTokens'>;

export function fleetSum(perPod: PerPod): number | undefined {
  if (perPod.size === 0) return undefined;
  let total = 0;
  for (const v of perPod.values()) total += v;
  return total;
}

export function fleetMean(perPod: PerPod): number | undefined {
  const total = fleetSum(perPod);
  return total === undefined ? undefined : total / perPod.size;
}

export function fleetMin(perPod: PerPod): number | undefined {
  if (perPod.size === 0) return undefined;
  return Math.min(...perPod.values());
}

/** Pod-wise product of two per-pod figures, for pods that have both. */
export function perPodProduct(a: PerPod, b: PerPod): Map<string, number> {
  const out = new Map<string, number>();
  for (const [pod, x] of a) {
    const y = b.get(pod);
    if (y !== undefined) out.set(pod, x * y);
  }
  return out;
}

/** Pod-wise ratio a / b for pods where b > 0. */
export function perPodRatio(a: PerPod, b: PerPod): Map<string, number> {
  const out = new Map<string, number>();
  for (const [pod, x] of a) {
    const y = b.get(pod);
    if (y !== undefined && y > 0) out.set(pod, x / y);
  }
  return out;
}

/** P50/P95/P99 of a histogram; undefined when it holds no observations in the window. */
export function histogramPercentiles(h: HistogramRates | undefined): TokenPercentiles | undefined {
  if (h === undefined) return undefined;
  const p50 = bucketQuantile(0.5, h.buckets);
  const p95 = bucketQuantile(0.95, h.buckets);
  const p99 = bucketQuantile(0.99, h.buckets);
  if (p50 === undefined && p95 === undefined && p99 === undefined) return undefined;
  const out: TokenPercentiles = {};
  if (p50 !== undefined) out.p50 = p50;
  if (p95 !== undefined) out.p95 = p95;
  if (p99 !== undefined) out.p99 = p99;
  return out;
}

/** Mean observation of a histogram over the window (`rate(_sum) / rate(_count)`). */
export function histogramMean(h: HistogramRates | undefined): number | undefined {
  if (h?.sumPerSecond === undefined || h.countPerSecond === undefined || !(h.countPerSecond > 0))
    return undefined;
  return h.sumPerSecond / h.countPerSecond;
}

/** a / b when both are known and b > 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || !(b > 0) ? undefined : a / b;
}

/**
 * In-flight tokens projected to completion, for engines without a token gauge of that meaning.
 *
 * Two estimates, the larger wins: (a) running requests x mean tokens of a finished request (mean
 * prompt + mean output over the rate window): the tokens those requests will hold when they end;
 * (b) tokens the KV cache holds now (usage x capacity, or used blocks x block size): a hard lower
 * bound, since every token in KV belongs to a request in flight. (a) undershoots when long
 * requests dominate the running set (they stay longer, so they are over-represented among running
 * requests); (b) then catches up as their KV grows.
 *
 * Requests still waiting for admission are in flight too (the Observation counts running and
 * waiting): each adds the mean tokens of a finished request, since it will hold that much KV once
 * admitted. Engines without a waiting gauge pass `waitingRequests: undefined` and get the running
 * part alone, as do waiting requests before any request finished (their size is unknown then).
 *
 * Example: 24 running, mean prompt 1322 and mean output 294 -> (a) = 24 x 1616 = 38,784; KV 81% of
 * 538,816 tokens -> (b) = 437,788; 10 waiting -> + 10 x 1616 = 16,160; the estimate is 453,948 tokens.
 */
export function estimateInflightTokens(input: {
  runningRequests: number | undefined;
  meanInputTokens: number | undefined;
  meanOutputTokens: number | undefined;
  kvTokensInUse: number | undefined;
  waitingRequests?: number | undefined;
}): number | undefined {
  const candidates: number[] = [];
  const perRequest =
    input.meanInputTokens === undefined || input.meanOutputTokens === undefined
      ? undefined
      : input.meanInputTokens + input.meanOutputTokens;
  const byRequests = requestTokens(input.runningRequests, perRequest);
  if (byRequests !== undefined) candidates.push(byRequests);
  if (input.kvTokensInUse !== undefined) candidates.push(input.kvTokensInUse);
  if (candidates.length === 0) return undefined;
  const running = Math.max(...candidates);
  if (input.waitingRequests === undefined) return running;
  // Without a per-request size (no request finished in the window) the waiting part is unknown; the
  // running part is still a true lower bound, and holding instead would block a scale-up exactly when
  // a cold fleet is saturated.
  const waiting = requestTokens(input.waitingRequests, perRequest);
  return running + (waiting ?? 0);
}

/**
 * Tokens of `requests` requests of `tokensPerRequest` each. Zero requests hold zero tokens even when
 * the per-request figure is unknown (no request finished in the window); otherwise both are needed.
 */
export function requestTokens(
  requests: number | undefined,
  tokensPerRequest: number | undefined,
): number | undefined {
  if (requests === 0) return 0;
  return requests === undefined || tokensPerRequest === undefined ? undefined : requests * tokensPerRequest;
}

/** Metric (sample) names a reading needs from a payload, for indexing. */
export function sampleNamesOf(reading: Reading): string[] {
  switch (reading.kind) {
    case 'gauge':
    case 'rate':
      return reading.sources.map((s) => s.metric);
    case 'histogram':
      return reading.sources.flatMap((s) => [`${s.metric}_bucket`, `${s.metric}_sum`, `${s.metric}_count`]);
    case 'info':
      return [reading.source.metric];
  }
}

/** True when every `match` label of the reference has the given value in `labels`. */
export function matches(ref: SeriesRef, labels: Labels): boolean {
  if (ref.match === undefined) return true;
  for (const key in ref.match) {
    if (labels[key] !== ref.match[key]) return false;
  }
  return true;
}
