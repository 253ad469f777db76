/**
 * @module Prometheus' `histogram_quantile` for classic (bucketed) histograms, reproduced so the
 * direct-scrape path and the PromQL path compute percentiles with the same arithmetic. Follows
 * `bucketQuantile` in prometheus/prometheus promql/quantile.go (v2.42, the Debian version the
 * integration test runs): sort by upper bound, require a `+Inf` bucket, merge equal bounds, force
 * counts to be monotonic, then interpolate linearly inside the bucket that holds the rank.
 *
 * Worked example (vLLM prompt tokens, reference/fixtures/vllm-0.11-synthetic.prom): cumulative counts
 * 500 -> 930, 1000 -> 1190, 2000 -> 1330, 5000 -> 1396, +Inf -> 1402. P95: rank = 0.95 x 1402 = 1331.9,
 * first bucket with count >= rank is le=5000 (1396); it starts at 2000 with 1330 below it, so
 * P95 = 2000 + (5000 - 2000) x (1331.9 - 1330) / (1396 - 1330) = 2086.36.
 *
 * "No data" (no +Inf bucket, fewer than two buckets, zero observations) is `undefined`, never zero.
 */

export interface Bucket {
  /** The `le` bound; `Infinity` for the `+Inf` bucket. */
  readonly upperBound: number;
  /** Cumulative count (or cumulative rate) of observations <= upperBound. */
  readonly count: number;
}

export function bucketQuantile(q: number, input: readonly Bucket[]): number | undefined {
  if (Number.isNaN(q) || input.length === 0) return undefined;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const sorted = [...input].sort((a, b) => a.upperBound - b.upperBound);
  if (sorted[sorted.length - 1]?.upperBound !== Infinity) return undefined;
  // Coalesce buckets with the same bound (two series summed by le with different spellings, "1" and "1.0").
  const buckets: { upperBound: number; count: number }[] = [];
  for (const b of sorted) {
    const last = buckets[buckets.length - 1];
    if (last !== undefined && last.upperBound === b.upperBound) last.count += b.count;
    else buckets.push({ upperBound: b.upperBound, count: b.count });
  }
  // Summing rates of buckets from several pods can leave tiny non-monotonic steps; Prometheus lifts them.
  let max = -Infinity;
  for (const b of buckets) {
    if (b.count > max) max = b.count;
    else if (b.count < max) b.count = max;
  }
  if (buckets.length < 2) return undefined;
  const observations = (buckets[buckets.length - 1] as Bucket).count;
  if (!(observations > 0)) return undefined;
  let rank = q * observations;
  let b = buckets.findIndex((bucket, i) => i < buckets.length - 1 && bucket.count >= rank);
  if (b === -1) b = buckets.length - 1;
  // The rank falls in +Inf: Prometheus answers the highest finite bound (engine-metrics.md rule 0.4).
  if (b === buckets.length - 1) return (buckets[buckets.length - 2] as Bucket).upperBound;
  const bucket = buckets[b] as Bucket;
  if (b === 0 && bucket.upperBound <= 0) return bucket.upperBound;
  let bucketStart = 0;
  let count = bucket.count;
  if (b > 0) {
    const previous = buckets[b - 1] as Bucket;
    bucketStart = previous.upperBound;
    count -= previous.count;
    rank -= previous.count;
  }
  return bucketStart + (bucket.upperBound - bucketStart) * (rank / count);
}

/** Parses an `le` label value; undefined when it is not a number. */
export function parseLe(le: string | undefined): number | undefined {
  if (le === undefined) return undefined;
  if (le === '+Inf' || le === 'Inf' || le === '+inf') return Infinity;
  const value = Number(le);
  return le.trim() === '' || Number.isNaN(value) ? undefined : value;
}

/** Adds per-bucket values into `into`, keyed by the numeric bound (so "1" and "1.0" are one bucket). */
export function addBucket(into: Map<number, number>, upperBound: number, value: number): void {
  into.set(upperBound, (into.get(upperBound) ?? 0) + value);
}

export function bucketsFromMap(map: ReadonlyMap<number, number>): Bucket[] {
  return [...map].map(([upperBound, count]) => ({ upperBound, count }));
}
