import { describe, expect, it } from 'vitest';
import {
  histogramQuantile,
  OutputLengthEstimator,
  type Scrape,
  ScrapeStore,
  TOKEN_BUCKETS,
  TokenHistogram,
} from './signals.ts';

function histogramOf(values: number[]) {
  const h = new TokenHistogram();
  for (const v of values) h.observe(v);
  return h.snapshot();
}

function scrape(atSeconds: number, requestsTotal: number, outputs: number[] = []): Scrape {
  return {
    atSeconds,
    pods: [],
    promptTokensTotal: 0,
    generationTokensTotal: 0,
    preemptionsTotal: 0,
    requestsTotal,
    inputTokensTotal: 0,
    outputTokensTotal: 0,
    inflightRequests: 0,
    inflightTokens: 0,
    waitingTokens: 0,
    inputHistogram: histogramOf([]),
    outputHistogram: histogramOf(outputs),
  };
}

describe('histogramQuantile', () => {
  it.each([
    // The worked example of the function comment: 3 in (100, 200], 1 in (200, 500]; rank 3.8 of 4.
    ['interpolates in the bucket holding the rank', [150, 150, 150, 300], 0.95, 440],
    ['interpolates across a bucket holding several', [150, 300, 300, 300], 0.95, 200 + ((3.8 - 1) / 3) * 300],
    ['returns the bucket bound at its edge', [1, 2], 0.5, 1],
    ['saturates at the highest finite bound in +Inf', [200_000, 300_000], 0.99, 100_000],
  ])('%s', (_name, values, q, expected) => {
    expect(histogramQuantile(q, histogramOf(values), undefined)).toBeCloseTo(expected, 9);
  });

  it('works on the increase between two snapshots; nothing observed is undefined', () => {
    const h = new TokenHistogram();
    for (const v of [10_000, 10_000]) h.observe(v);
    const older = h.snapshot();
    for (const v of [3, 4]) h.observe(v);
    expect(histogramQuantile(0.99, h.snapshot(), older)).toBeLessThanOrEqual(5);
    expect(histogramQuantile(0.5, older, older)).toBeUndefined();
  });

  it('uses vLLM 1-2-5 buckets', () => {
    expect(TOKEN_BUCKETS.slice(0, 6)).toEqual([1, 2, 5, 10, 20, 50]);
  });
});

describe('ScrapeStore', () => {
  it('computes rate() over a window from the newest scrape at or before its start', () => {
    const store = new ScrapeStore(900);
    expect(store.rate((s) => s.requestsTotal, 60)).toBeUndefined();
    for (let t = 0; t <= 120; t += 5) store.add(scrape(t, t * 3));
    // 3 requests per second.
    expect(store.rate((s) => s.requestsTotal, 60)).toBeCloseTo(3, 9);
  });

  it('drops scrapes older than it keeps', () => {
    const store = new ScrapeStore(30);
    for (let t = 0; t <= 100; t += 5) store.add(scrape(t, t));
    expect(store.at(0)?.atSeconds).toBe(70);
  });

  it('answers histogram_quantile over a window', () => {
    const store = new ScrapeStore(900);
    store.add(scrape(0, 0, [10_000]));
    store.add(scrape(60, 0, [10_000, 7, 8]));
    expect(store.quantile((s) => s.outputHistogram, 0.5, 60)).toBeLessThanOrEqual(10);
  });
});

describe('OutputLengthEstimator (the gateway expected-output rule)', () => {
  it('expects the P95 of recent outputs, or what a request has produced when that is more', () => {
    const estimator = new OutputLengthEstimator();
    for (let v = 1; v <= 100; v++) estimator.observe(v);
    expect(estimator.expected(0)).toBe(95);
    expect(estimator.expected(130)).toBe(130);
  });

  it('expects the default until it has enough observations', () => {
    const estimator = new OutputLengthEstimator(512, 20, 1024);
    for (let v = 0; v < 19; v++) estimator.observe(10);
    expect(estimator.expected(0)).toBe(1024);
    expect(estimator.expected(2000)).toBe(2000);
    estimator.observe(10);
    expect(estimator.expected(0)).toBe(10);
  });

  it('keeps only its window of recent outputs', () => {
    const estimator = new OutputLengthEstimator(20, 20, 1024);
    for (let v = 0; v < 20; v++) estimator.observe(1000);
    for (let v = 0; v < 20; v++) estimator.observe(7);
    expect(estimator.expected(0)).toBe(7);
  });
});
