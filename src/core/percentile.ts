/**
 * Nearest-rank percentile of a list (no interpolation, so the answer is always an observed value):
 * the smallest value with at least p% of the values at or below it. [10, 20, 30, 40] at p=95 -> rank
 * ceil(0.95 x 4) = 4 -> 40; at p=50 -> rank 2 -> 20. Undefined for an empty list.
 */
export function nearestRankPercentile(values: readonly number[], percentile: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((percentile / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}
