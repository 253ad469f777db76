import { describe, expect, it } from 'vitest';
import type { HpaMetricSpec, HpaObservation, HpaPod, HpaSpec, HpaState } from './hpa.ts';
import {
  DEFAULT_HPA_CONTROLLER_CONFIG,
  initialHpaState,
  isWithinTolerance,
  quantityMilliBigInt,
  quantityMilliValue,
  reconcileHpa,
  sumMilli,
} from './hpa.ts';

const milli = quantityMilliValue;
/** int64 max as the nearest double, which is what saturated milli-values become as numbers. */
const INT64_MAX = Number(9_223_372_036_854_775_807n);

function external(averageValue: string, name = 'tokenscaler_desired_replicas'): HpaMetricSpec {
  return { type: 'External', name, target: { type: 'AverageValue', averageValueMilli: milli(averageValue) } };
}

function externalValue(value: string): HpaMetricSpec {
  return { type: 'External', name: 'm', target: { type: 'Value', valueMilli: milli(value) } };
}

function items(...values: string[]): HpaObservation['readings'][number] {
  return { kind: 'values', valuesMilli: values.map(milli) };
}

function runningPods(ready: number, total: number): HpaPod[] {
  return Array.from({ length: total }, (_, i) => ({ name: `pod-${i}`, phase: 'Running', ready: i < ready }));
}

describe('quantityMilliValue (Kubernetes Quantity.MilliValue)', () => {
  it.each([
    ['0', 0],
    ['1', 1000],
    ['12', 12_000],
    ['1500m', 1500],
    ['1.5', 1500],
    ['0.3', 300],
    ['300m', 300],
    ['3k', 3_000_000],
    ['1e3', 1_000_000],
    ['1E3', 1_000_000],
    ['1Ki', 1_024_000],
    ['1.5Gi', 1_610_612_736_000],
    ['1M', 1_000_000_000],
    ['5.', 5000],
    ['.5', 500],
    ['+2', 2000],
    ['-1.5', -1500],
    // Go rounds non-zero values up (away from zero) to nano, then MilliValue rounds up to milli.
    ['0.0004', 1],
    ['1n', 1],
    ['1u', 1],
    ['-1n', -1],
    ['3.3000000000000003', 3301],
    ['1e-100', 1],
    // int64 saturation instead of overflow
    ['1e30', INT64_MAX],
    ['  7  ', 7000],
  ])('%s -> %d milli', (text, expected) => {
    expect(milli(text)).toBe(expected);
  });

  it('keeps exact int64 precision as a BigInt', () => {
    expect(quantityMilliBigInt('9223372036854775')).toBe(9_223_372_036_854_775_000n);
    expect(quantityMilliBigInt('9223372036854776')).toBe(9_223_372_036_854_775_807n);
    // 1E (exa) is 10^21 milli: saturated at int64, as Go caps it.
    expect(quantityMilliBigInt('1E')).toBe(9_223_372_036_854_775_807n);
  });

  it.each(['', 'abc', '1.2.3', '.', '1K', '1e', '1 k', 'NaN', 'Infinity', '1e+', '0x10', '1ki'])(
    'rejects %j naming the field and the value',
    (text) => {
      expect(() => milli(text)).toThrow(/^quantity: /);
    },
  );

  it('sums with int64 saturation', () => {
    expect(sumMilli([1000, 2000])).toBe(3000);
    expect(sumMilli([INT64_MAX, INT64_MAX])).toBe(INT64_MAX);
  });
});

describe('isWithinTolerance', () => {
  it.each([
    [1.1, true],
    [0.9, true],
    [11_000 / (1000 * 10), true],
    [3301 / 3000, false],
    [1.2, false],
    [0.89, false],
    [Number.NaN, false],
  ])('ratio %d within [0.9, 1.1] is %s', (ratio, expected) => {
    expect(isWithinTolerance(ratio, { scaleUp: 0.1, scaleDown: 0.1 })).toBe(expected);
  });
});

/**
 * The worked vectors of reference/external-metrics-contract.md §5.7: tolerance 0.1, minReplicas 1,
 * maxReplicas 100, first reconcile of a fresh HPA unless a row says otherwise.
 */
interface VectorRow {
  id: string;
  spec: Omit<HpaSpec, 'maxReplicas'> & { maxReplicas?: number };
  observation: HpaObservation;
  expected: number;
  scalingActive?: 'True' | 'False';
  reason?: string;
}

const singleSyncVectors: VectorRow[] = [
  {
    id: 'V1 AverageValue 100, item 1250, 10 replicas -> ceil(12.5)',
    spec: { metrics: [external('100')] },
    observation: { specReplicas: 10, statusReplicas: 10, readings: [items('1250')] },
    expected: 13,
  },
  {
    id: 'V2 items are summed: 300 + 450 + 500',
    spec: { metrics: [external('100')] },
    observation: { specReplicas: 10, statusReplicas: 10, readings: [items('300', '450', '500')] },
    expected: 13,
  },
  {
    id: 'V3 desired-replicas pattern: 11 over 10 is inside the inclusive band',
    spec: { metrics: [external('1')] },
    observation: { specReplicas: 10, statusReplicas: 10, readings: [items('11')] },
    expected: 10,
  },
  {
    id: 'V4 desired-replicas pattern: 12 over 10 scales',
    spec: { metrics: [external('1')] },
    observation: { specReplicas: 10, statusReplicas: 10, readings: [items('12')] },
    expected: 12,
  },
  {
    id: 'V5 per-HPA scale-up tolerance 0 lets 10 -> 11 through',
    spec: { metrics: [external('1')], behavior: { scaleUp: { tolerance: 0 } } },
    observation: { specReplicas: 10, statusReplicas: 10, readings: [items('11')] },
    expected: 11,
  },
  {
    id: 'V6 fresh HPA: scale-down to 5 held at 10 by the seeded history',
    spec: { metrics: [external('100')] },
    observation: { specReplicas: 10, statusReplicas: 10, readings: [items('420')] },
    expected: 10,
    reason: 'ScaleDownStabilized',
  },
  {
    id: 'V7 scale-down window 0 goes to 5 at once',
    spec: { metrics: [external('100')], behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } },
    observation: { specReplicas: 10, statusReplicas: 10, readings: [items('420')] },
    expected: 5,
  },
  {
    id: 'V8 Value 1000, item 1500, 4 of 4 ready -> ceil(6)',
    spec: { metrics: [externalValue('1000')] },
    observation: { specReplicas: 4, statusReplicas: 4, pods: runningPods(4, 4), readings: [items('1500')] },
    expected: 6,
  },
  {
    id: 'V9 Value target with 2 of 4 ready proposes 3, held at 4 by stabilisation',
    spec: { metrics: [externalValue('1000')] },
    observation: { specReplicas: 4, statusReplicas: 4, pods: runningPods(2, 4), readings: [items('1500')] },
    expected: 4,
  },
  {
    id: 'V9 with a scale-down window of 0 goes to 3',
    spec: { metrics: [externalValue('1000')], behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } },
    observation: { specReplicas: 4, statusReplicas: 4, pods: runningPods(2, 4), readings: [items('1500')] },
    expected: 3,
  },
  {
    id: 'V10 legacy scale-up cap max(2 x 2, 4)',
    spec: { metrics: [external('1')] },
    observation: { specReplicas: 2, statusReplicas: 2, readings: [items('20')] },
    expected: 4,
    reason: 'ScaleUpLimit',
  },
  {
    id: 'V11 behavior {} defaults: Pods 4 vs Percent 100, Max -> 6',
    spec: { metrics: [external('1')], behavior: {} },
    observation: { specReplicas: 2, statusReplicas: 2, readings: [items('20')] },
    expected: 6,
    reason: 'ScaleUpLimit',
  },
  {
    id: 'V13 one metric fails but the other scales up: scale-up proceeds',
    spec: { metrics: [external('100'), external('1', 'other')] },
    observation: {
      specReplicas: 10,
      statusReplicas: 10,
      readings: [
        items('1250'),
        { kind: 'error', message: 'the server is currently unable to handle the request' },
      ],
    },
    expected: 13,
    scalingActive: 'True',
  },
  {
    id: 'V14 one metric fails and the other would scale down: no scaling',
    spec: { metrics: [external('100'), external('1', 'other')] },
    observation: {
      specReplicas: 10,
      statusReplicas: 10,
      readings: [
        items('700'),
        { kind: 'error', message: 'the server is currently unable to handle the request' },
      ],
    },
    expected: 10,
    scalingActive: 'False',
    reason: 'FailedGetExternalMetric',
  },
  {
    id: 'V15 the only metric answers 404: no change',
    spec: { metrics: [external('1')] },
    observation: {
      specReplicas: 10,
      statusReplicas: 10,
      readings: [{ kind: 'error', message: 'the server could not find the requested resource' }],
    },
    expected: 10,
    scalingActive: 'False',
    reason: 'FailedGetExternalMetric',
  },
  {
    id: 'V16 zero replicas with minReplicas 1 is maintenance mode',
    spec: { metrics: [external('1')] },
    observation: { specReplicas: 0, statusReplicas: 0, readings: [items('5')] },
    expected: 0,
    scalingActive: 'False',
    reason: 'ScalingDisabled',
  },
  {
    id: 'V17 scale from zero with minReplicas 0 and a Value target: ceil(2.5)',
    spec: { minReplicas: 0, metrics: [externalValue('1000')] },
    observation: { specReplicas: 0, statusReplicas: 0, pods: [], readings: [items('2500')] },
    expected: 3,
  },
  {
    id: 'V18 Pods metric, one pod missing a sample on a scale-up counts as 0',
    spec: {
      metrics: [{ type: 'Pods', name: 'tps', target: { type: 'AverageValue', averageValueMilli: 100_000 } }],
    },
    observation: {
      specReplicas: 4,
      statusReplicas: 4,
      pods: runningPods(4, 4),
      readings: [{ kind: 'pod-values', byPod: { 'pod-0': 150_000, 'pod-1': 150_000, 'pod-2': 150_000 } }],
    },
    expected: 5,
  },
  {
    id: 'V19 KEDA static fallback serves 100 x 6 = 600 against AverageValue 100',
    spec: { metrics: [external('100')] },
    observation: { specReplicas: 5, statusReplicas: 5, readings: [items('600')] },
    expected: 6,
  },
  {
    id: 'V20 float artefact "3.3000000000000003" rounds up past the band',
    spec: { metrics: [external('1')] },
    observation: { specReplicas: 3, statusReplicas: 3, readings: [items('3.3000000000000003')] },
    expected: 4,
  },
  {
    id: 'V20 canonical "3300m" stays inside the band',
    spec: { metrics: [external('1')] },
    observation: { specReplicas: 3, statusReplicas: 3, readings: [items('3300m')] },
    expected: 3,
  },
];

describe('reconcileHpa: contract vectors V1-V20 on one sync', () => {
  it.each(singleSyncVectors)('$id', (row) => {
    const spec: HpaSpec = { maxReplicas: 100, ...row.spec };
    const result = reconcileHpa(spec, row.observation, initialHpaState(), 1000);
    expect(result.desiredReplicas).toBe(row.expected);
    expect(result.rescale).toBe(row.expected !== row.observation.specReplicas);
    if (row.scalingActive !== undefined)
      expect(result.conditions.ScalingActive?.status).toBe(row.scalingActive);
    if (row.reason !== undefined) {
      const reasons = Object.values(result.conditions).map((condition) => condition?.reason);
      expect(reasons).toContain(row.reason);
    }
  });

  it('V5 is inert when the HPAConfigurableTolerance gate is off', () => {
    const spec: HpaSpec = {
      maxReplicas: 100,
      metrics: [external('1')],
      behavior: { scaleUp: { tolerance: 0 } },
    };
    const observation = { specReplicas: 10, statusReplicas: 10, readings: [items('11')] };
    const config = { ...DEFAULT_HPA_CONTROLLER_CONFIG, configurableTolerance: false };
    expect(reconcileHpa(spec, observation, initialHpaState(), 0, config).desiredReplicas).toBe(10);
  });

  it('reports an Object metric with more than one item as invalid', () => {
    const spec: HpaSpec = {
      maxReplicas: 100,
      metrics: [{ type: 'Object', name: 'm', target: { type: 'AverageValue', averageValueMilli: 1000 } }],
    };
    const result = reconcileHpa(
      spec,
      { specReplicas: 2, statusReplicas: 2, readings: [items('4', '4')] },
      initialHpaState(),
      0,
    );
    expect(result.desiredReplicas).toBe(2);
    expect(result.conditions.ScalingActive).toMatchObject({
      status: 'False',
      reason: 'FailedGetObjectMetric',
    });
    expect(result.error).toMatch(/returned 2 results when we asked for exactly one/);
  });

  it('an empty items list is an error, not zero', () => {
    const spec: HpaSpec = { maxReplicas: 100, metrics: [external('1')] };
    const result = reconcileHpa(
      spec,
      { specReplicas: 4, statusReplicas: 4, readings: [items()] },
      initialHpaState(),
      0,
    );
    expect(result.desiredReplicas).toBe(4);
    expect(result.error).toMatch(/no metrics returned from external metrics API/);
  });

  it('clamps an out-of-range target before reading metrics', () => {
    const spec: HpaSpec = { minReplicas: 2, maxReplicas: 8, metrics: [external('1')] };
    const above = reconcileHpa(
      spec,
      { specReplicas: 12, statusReplicas: 12, readings: [] },
      initialHpaState(),
      0,
    );
    const below = reconcileHpa(
      spec,
      { specReplicas: 1, statusReplicas: 1, readings: [] },
      initialHpaState(),
      0,
    );
    expect([above.desiredReplicas, below.desiredReplicas]).toEqual([8, 2]);
  });
});

/** Steps one HPA through time, feeding back each sync's replicas as the next current size. */
function stepThrough(
  spec: HpaSpec,
  start: { replicas: number; state?: HpaState },
  reading: (replicas: number) => HpaObservation['readings'],
  times: readonly number[],
): number[] {
  let replicas = start.replicas;
  let state = start.state ?? initialHpaState();
  const seen: number[] = [];
  for (const now of times) {
    const result = reconcileHpa(
      spec,
      { specReplicas: replicas, statusReplicas: replicas, readings: reading(replicas) },
      state,
      now,
    );
    state = result.state;
    replicas = result.desiredReplicas;
    seen.push(replicas);
  }
  return seen;
}

describe('reconcileHpa: vectors over time', () => {
  it('V6: the fresh-HPA hold lasts 300 s, then the scale-down to 5 goes through', () => {
    const spec: HpaSpec = { maxReplicas: 100, metrics: [external('100')] };
    // Syncs every 15 s from t=0; the seed (10 at t=0) leaves the window once t - 300 > 0.
    const times = Array.from({ length: 23 }, (_, i) => i * 15);
    const seen = stepThrough(spec, { replicas: 10 }, () => [items('420')], times);
    expect(seen.slice(0, 21)).toEqual(Array(21).fill(10)); // t = 0 .. 300
    expect(seen.slice(21)).toEqual([5, 5]); // t = 315, 330
  });

  it('V12: scale-down rate policies give 72, hold at 72 inside the period, then 64 after 60 s', () => {
    const spec: HpaSpec = {
      maxReplicas: 100,
      metrics: [external('1')],
      behavior: {
        scaleDown: {
          stabilizationWindowSeconds: 0,
          policies: [
            { type: 'Pods', value: 4, periodSeconds: 60 },
            { type: 'Percent', value: 10, periodSeconds: 60 },
          ],
        },
      },
    };
    const seen = stepThrough(spec, { replicas: 80 }, () => [items('10')], [0, 15, 30, 45, 60]);
    expect(seen).toEqual([72, 72, 72, 72, 64]);
  });

  it('legacy path: scale-up doubles per sync until the metric is met', () => {
    const spec: HpaSpec = { maxReplicas: 100, metrics: [external('1')] };
    const seen = stepThrough(spec, { replicas: 2 }, () => [items('30')], [0, 15, 30, 45]);
    expect(seen).toEqual([4, 8, 16, 30]);
  });

  it('behavior: selectPolicy Disabled never scales down', () => {
    const spec: HpaSpec = {
      maxReplicas: 100,
      metrics: [external('1')],
      behavior: { scaleDown: { stabilizationWindowSeconds: 0, selectPolicy: 'Disabled' } },
    };
    expect(stepThrough(spec, { replicas: 10 }, () => [items('2')], [0, 15, 30])).toEqual([10, 10, 10]);
  });

  it('behavior: a scale-up stabilisation window takes the lowest recommendation of the window', () => {
    const spec: HpaSpec = {
      maxReplicas: 100,
      metrics: [external('1')],
      behavior: { scaleUp: { stabilizationWindowSeconds: 60 } },
    };
    // The seed (5 at t=0) is the window minimum until it is no longer strictly after now - 60;
    // at t=60 every sample in the window says 20, and the default policies allow 5 -> max(9, 10).
    const seen = stepThrough(spec, { replicas: 5 }, () => [items('20')], [0, 15, 30, 45, 60]);
    expect(seen).toEqual([5, 5, 5, 5, 10]);
  });
});
