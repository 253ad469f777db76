import { describe, expect, it } from 'vitest';
import { type DemandSeries, offeredDemand, oracleSchedule, peakDemand } from './demand.ts';
import type { StepTimeModel } from './roofline.ts';

/** A step model where prefill runs at 10,000 tokens/s and a decode step takes 50 ms. */
const MODEL = {
  prefillTokensPerSecond: () => 10_000,
  decodeStepSeconds: () => 0.05,
} as unknown as StepTimeModel;

function series(values: number[], stepSeconds = 5): DemandSeries {
  const replicas = Float64Array.from(values);
  return { stepSeconds, replicas, kvReplicas: replicas, prefillReplicas: new Float64Array(values.length) };
}

describe('offeredDemand', () => {
  it('counts tokens in flight for each request unloaded service time, and prompt tokens per second', () => {
    // One request of 10,000 prompt + 101 output tokens at t = 0: 1 s of prefill + 100 x 50 ms = 6 s.
    const demand = offeredDemand({
      requests: [{ arrivalSeconds: 0, inputTokens: 10_000, outputTokens: 101 }],
      tokensPerReplica: 10_101,
      prefillTokensPerSecondPerReplica: 1_000,
      stepModel: MODEL,
      chunkTokens: 8192,
      nominalDecodeBatch: 64,
      stepSeconds: 1,
      smoothingSeconds: 0,
    });
    expect(Array.from(demand.kvReplicas.slice(0, 8))).toEqual([1, 1, 1, 1, 1, 1, 0, 0]);
    // 10,000 prompt tokens in the first second / 1,000 per replica = 10 replicas of prefill.
    expect(demand.prefillReplicas[0]).toBe(10);
    expect(demand.prefillReplicas[1]).toBe(0);
    expect(demand.replicas[0]).toBe(10);
    expect(demand.replicas[3]).toBe(1);
  });

  it('smooths the prompt rate with a centred moving average', () => {
    const demand = offeredDemand({
      requests: [
        { arrivalSeconds: 10, inputTokens: 3_000, outputTokens: 1 },
        { arrivalSeconds: 20, inputTokens: 1, outputTokens: 1 },
      ],
      tokensPerReplica: 1e9,
      prefillTokensPerSecondPerReplica: 100,
      stepModel: MODEL,
      chunkTokens: 8192,
      nominalDecodeBatch: 64,
      stepSeconds: 1,
      smoothingSeconds: 2,
    });
    // 3,000 tokens in one 1-s bin averaged over 3 bins: 1,000/s / 100 = 10 replicas at 9, 10 and 11 s.
    expect(demand.prefillReplicas[9]).toBeCloseTo(10, 9);
    expect(demand.prefillReplicas[10]).toBeCloseTo(10, 9);
    expect(demand.prefillReplicas[11]).toBeCloseTo(10, 9);
    expect(demand.prefillReplicas[12]).toBeCloseTo(0, 9);
  });
});

describe('oracleSchedule', () => {
  it('provisions for the highest demand within the lookahead, at the utilization', () => {
    const demand = series([1, 1, 1, 8, 1, 1, 1, 1]);
    const oracle = oracleSchedule(demand, 0.8, 10, 1, 100);
    // At 0 s the lookahead (0..10 s) does not reach the 8 at 15 s; at 5 s it does: ceil(8 / 0.8) = 10.
    expect(oracle.desiredAt(0)).toBe(2);
    expect(oracle.desiredAt(5)).toBe(10);
    expect(oracle.desiredAt(15)).toBe(10);
    expect(oracle.desiredAt(20)).toBe(2);
  });

  it('clamps to the bounds and does not round an exact fit up', () => {
    const oracle = oracleSchedule(series([0, 4, 400]), 1, 0, 2, 50);
    expect(oracle.desiredAt(0)).toBe(2);
    expect(oracle.desiredAt(5)).toBe(4);
    expect(oracle.desiredAt(10)).toBe(50);
    expect(oracle.desiredAt(1e9)).toBe(50);
  });

  it('peakDemand reads the largest sample in a time range', () => {
    expect(peakDemand(series([1, 5, 2, 9]), 0, 10)).toBe(5);
    expect(peakDemand(series([1, 5, 2, 9]), 0, Number.POSITIVE_INFINITY)).toBe(9);
  });
});
