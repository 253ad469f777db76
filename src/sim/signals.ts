/**
 * What the simulated fleet exposes, as a monitoring stack would see it: per-pod engine gauges and
 * counters (vLLM names: num_requests_running, num_requests_waiting, kv_cache_usage_perc,
 * prompt/generation tokens, preemptions), the tokenscaler gateway's gauges and token histograms,
 * sampled every scrape interval. Policies read only these samples, never the simulator's internals,
 * so each sees what it would really see, as late as it would see it.
 */

/** vLLM's 1-2-5 token buckets up to 100,000 (build_1_2_5_buckets for max_model_len 131,072). */
export const TOKEN_BUCKETS: readonly number[] = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
];

/** A cumulative histogram as Prometheus keeps it: per-bucket counts (non-cumulative here), sum, count. */
export class TokenHistogram {
  readonly counts = new Float64Array(TOKEN_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  observe(value: number): void {
    let i = 0;
    while (i < TOKEN_BUCKETS.length && value > (TOKEN_BUCKETS[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    return { counts: Float64Array.from(this.counts), sum: this.sum, count: this.count };
  }
}

export interface HistogramSnapshot {
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * Prometheus histogram_quantile over the increase between two snapshots: linear interpolation in
 * the bucket holding the rank; a rank in the +Inf bucket returns the highest finite bound (the
 * saturation engine-metrics.md section 0 warns about). Undefined when nothing was observed.
 *
 * Example: increases [0,0,0,0,0,0,0,3,1] over buckets ...,100,200,500 at q = 0.95: rank 3.8 of 4
 * falls in (200, 500] with 3 below -> 200 + (3.8 - 3) / 1 x 300 = 440.
 */
export function histogramQuantile(
  q: number,
  newer: HistogramSnapshot,
  older: HistogramSnapshot | undefined,
): number | undefined {
  const n = newer.counts.length;
  let total = 0;
  const increase = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = (newer.counts[i] as number) - (older?.counts[i] ?? 0);
    increase[i] = v;
    total += v;
  }
  if (total <= 0) return undefined;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < n; i++) {
    const inBucket = increase[i] as number;
    if (below + inBucket >= rank && inBucket > 0) {
      if (i >= TOKEN_BUCKETS.length) return TOKEN_BUCKETS[TOKEN_BUCKETS.length - 1];
      const upper = TOKEN_BUCKETS[i] as number;
      const lower = i === 0 ? 0 : (TOKEN_BUCKETS[i - 1] as number);
      return lower + ((rank - below) / inBucket) * (upper - lower);
    }
    below += inBucket;
  }
  return TOKEN_BUCKETS[TOKEN_BUCKETS.length - 1];
}

export interface PodSample {
  name: string;
  ready: boolean;
  deleting: boolean;
  runningRequests: number;
  waitingRequests: number;
  /** vllm:kv_cache_usage_perc, 0..1. */
  kvUsage: number;
}

/** One scrape of the whole fleet. Counters are cumulative over the run (pods that left included). */
export interface Scrape {
  atSeconds: number;
  pods: PodSample[];
  // Engine counters, summed over pods.
  promptTokensTotal: number;
  generationTokensTotal: number;
  preemptionsTotal: number;
  // Gateway (counted when a request settles, as src/gateway does).
  requestsTotal: number;
  inputTokensTotal: number;
  outputTokensTotal: number;
  inflightRequests: number;
  /** Prompt + expected output of requests in flight (the gateway's estimate). */
  inflightTokens: number;
  /** Prompt tokens of requests without a first token yet. */
  waitingTokens: number;
  inputHistogram: HistogramSnapshot;
  outputHistogram: HistogramSnapshot;
}

/** Keeps recent scrapes and answers the rate() and histogram_quantile() questions policies ask. */
export class ScrapeStore {
  private readonly scrapes: Scrape[] = [];
  private readonly keepSeconds: number;

  constructor(keepSeconds: number) {
    this.keepSeconds = keepSeconds;
  }

  add(scrape: Scrape): void {
    this.scrapes.push(scrape);
    const cutoff = scrape.atSeconds - this.keepSeconds;
    let drop = 0;
    while (drop < this.scrapes.length - 1 && (this.scrapes[drop] as Scrape).atSeconds < cutoff) drop++;
    if (drop > 0) this.scrapes.splice(0, drop);
  }

  get latest(): Scrape | undefined {
    return this.scrapes[this.scrapes.length - 1];
  }

  /** The newest scrape at or before `atSeconds` (the oldest kept one if none). */
  at(atSeconds: number): Scrape | undefined {
    for (let i = this.scrapes.length - 1; i >= 0; i--) {
      const scrape = this.scrapes[i] as Scrape;
      if (scrape.atSeconds <= atSeconds) return scrape;
    }
    return this.scrapes[0];
  }

  /**
   * Per-second rate of a counter over the last `windowSeconds` (PromQL rate() without the
   * extrapolation to the window edges). Undefined until two scrapes exist.
   */
  rate(counter: (s: Scrape) => number, windowSeconds: number): number | undefined {
    const latest = this.latest;
    if (latest === undefined) return undefined;
    const older = this.at(latest.atSeconds - windowSeconds);
    if (older === undefined || older === latest) return undefined;
    const seconds = latest.atSeconds - older.atSeconds;
    return seconds > 0 ? (counter(latest) - counter(older)) / seconds : undefined;
  }

  /** histogram_quantile(q, increase(h[window])). */
  quantile(
    histogram: (s: Scrape) => HistogramSnapshot,
    q: number,
    windowSeconds: number,
  ): number | undefined {
    const latest = this.latest;
    if (latest === undefined) return undefined;
    const older = this.at(latest.atSeconds - windowSeconds);
    return histogramQuantile(q, histogram(latest), older === latest ? undefined : older && histogram(older));
  }
}

/**
 * The gateway's expected output for a request without a token limit, as src/gateway does it
 * (proxy.ts, output-stats.ts, inflight.ts): the P95 (nearest rank) of the model's last 512 outputs
 * once it has 20 of them, else `defaultOutputTokens` (1,024); a request that has produced more
 * counts what it produced. In-flight tokens = prompt + max(expected, produced).
 *
 * Example: outputs 1..100 -> P95 95; a request at 0 tokens counts 95, one at 130 tokens counts 130.
 */
export class OutputLengthEstimator {
  private readonly recent: number[] = [];
  private next = 0;
  private p95: number | undefined;
  private readonly windowSize: number;
  private readonly minObservations: number;
  private readonly defaultOutputTokens: number;

  constructor(windowSize = 512, minObservations = 20, defaultOutputTokens = 1024) {
    this.windowSize = windowSize;
    this.minObservations = minObservations;
    this.defaultOutputTokens = defaultOutputTokens;
  }

  observe(outputTokens: number): void {
    if (this.recent.length < this.windowSize) this.recent.push(outputTokens);
    else this.recent[this.next] = outputTokens;
    this.next = (this.next + 1) % this.windowSize;
    this.p95 = undefined;
  }

  /** Output tokens the gateway expects of a request that has produced `produced` so far. */
  expected(produced: number): number {
    if (this.recent.length < this.minObservations) return Math.max(this.defaultOutputTokens, produced);
    if (this.p95 === undefined) {
      const sorted = Float64Array.from(this.recent).sort();
      this.p95 = sorted[Math.ceil(0.95 * sorted.length) - 1] as number;
    }
    return Math.max(this.p95, produced);
  }
}
