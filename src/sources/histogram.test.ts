import { describe, expect, it } from 'vitest';
import { type Bucket, bucketQuantile, parseLe } from './histogram.ts';

const b = (pairs: [number, number][]): Bucket[] =>
  pairs.map(([upperBound, count]) => ({ upperBound, count }));

// Cumulative counts of vllm:request_prompt_tokens in reference/fixtures/vllm-0.11-synthetic.prom.
const VLLM_PROMPT = b([
  [1, 0],
  [2, 0],
  [5, 0],
  [10, 4],
  [20, 19],
  [50, 88],
  [100, 240],
  [200, 512],
  [500, 930],
  [1000, 1190],
  [2000, 1330],
  [5000, 1396],
  [Infinity, 1402],
]);

describe('bucketQuantile (Prometheus histogram_quantile)', () => {
  it.each([
    // rank 0.5 x 1402 = 701 falls in (200, 500]: 200 + 300 x (701 - 512) / (930 - 512) = 335.6459...
    [0.5, 200 + (300 * (701 - 512)) / (930 - 512)],
    // rank 1331.9 falls in (2000, 5000]: 2000 + 3000 x 1.9 / 66 = 2086.3636...
    [0.95, 2000 + (3000 * (0.95 * 1402 - 1330)) / 66],
    // rank 1387.98 falls in (2000, 5000] too: 2000 + 3000 x 57.98 / 66.
    [0.99, 2000 + (3000 * (0.99 * 1402 - 1330)) / 66],
  ])('q=%s on the vLLM fixture', (q, expected) => {
    expect(bucketQuantile(q, VLLM_PROMPT)).toBeCloseTo(expected, 9);
  });

  it('answers the highest finite bound when the rank lands in +Inf (saturation)', () => {
    // 10 of 100 observations above 1000: P95 is really above 1000 but Prometheus says 1000.
    expect(
      bucketQuantile(
        0.95,
        b([
          [500, 50],
          [1000, 90],
          [Infinity, 100],
        ]),
      ),
    ).toBe(1000);
  });

  it('treats the first bucket as starting at 0', () => {
    expect(
      bucketQuantile(
        0.5,
        b([
          [100, 10],
          [Infinity, 10],
        ]),
      ),
    ).toBe(50);
  });

  it('returns the bound of a first bucket at or below zero', () => {
    expect(
      bucketQuantile(
        0.5,
        b([
          [-1, 10],
          [Infinity, 10],
        ]),
      ),
    ).toBe(-1);
  });

  it('sorts buckets, merges equal bounds and lifts non-monotonic counts', () => {
    // Unsorted input from two pods with the same layout, one pod's le="10" written as 10.0 (same bound).
    const merged = b([
      [Infinity, 20],
      [10, 6],
      [5, 3],
      [10, 6],
    ]);
    // Buckets: 5 -> 3, 10 -> 12, +Inf -> 20; rank 10 lies in (5, 10]: 5 + 5 x 7/9.
    expect(bucketQuantile(0.5, merged)).toBeCloseTo(5 + (5 * 7) / 9, 12);
    // A dip (10 -> 2 after 5 -> 3) is lifted to 3: rank 2.5 in (0, 5] = 5 x 2.5/3.
    expect(
      bucketQuantile(
        0.5,
        b([
          [5, 3],
          [10, 2],
          [Infinity, 5],
        ]),
      ),
    ).toBeCloseTo((5 * 2.5) / 3, 12);
  });

  it.each([
    [
      'no +Inf bucket',
      b([
        [1, 1],
        [2, 2],
      ]),
    ],
    ['only +Inf', b([[Infinity, 5]])],
    [
      'no observations',
      b([
        [1, 0],
        [Infinity, 0],
      ]),
    ],
    ['empty', []],
  ])('is undefined (no data) with %s', (_title, buckets) => {
    expect(bucketQuantile(0.95, buckets)).toBeUndefined();
  });

  it('follows Prometheus for q outside [0, 1]', () => {
    expect(bucketQuantile(-0.1, VLLM_PROMPT)).toBe(-Infinity);
    expect(bucketQuantile(1.1, VLLM_PROMPT)).toBe(Infinity);
    expect(bucketQuantile(Number.NaN, VLLM_PROMPT)).toBeUndefined();
  });
});

describe('parseLe', () => {
  it.each([
    ['+Inf', Infinity],
    ['1.0', 1],
    ['2000', 2000],
    ['1e3', 1000],
    ['', undefined],
    ['x', undefined],
    [undefined, undefined],
  ])('%j', (raw, expected) => {
    expect(parseLe(raw)).toBe(expected);
  });
});
