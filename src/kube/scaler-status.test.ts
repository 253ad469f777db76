import { describe, expect, it } from 'vitest';
import { validateStructural } from '../../test/support/fake-apiserver-validation.ts';
import { capacityOfSpec } from '../capacity/from-spec.ts';
import { tokenScalerSpecSchema } from '../config/tokenscaler-spec.ts';
import { initialDeciderState } from '../core/decide.ts';
import type { Decision } from '../core/decision.ts';
import type { ScalerState } from '../reconcile/scaler-state.ts';
import { statusOpenApiSchema } from './crd.ts';
import {
  computeStatus,
  parseStoredStatus,
  RECENT_DECISIONS,
  statusChanged,
  statusPatch,
  type TokenScalerStatus,
  tokenScalerStatusSchema,
} from './scaler-status.ts';

const spec = tokenScalerSpecSchema.parse({
  scaleTargetRef: { name: 'vllm' },
  maxReplicas: 8,
  model: { preset: 'llama-3.1-8b' },
  accelerator: { preset: 'h100-80gb' },
  engine: { kind: 'vllm' },
  metrics: { scrape: { urls: ['http://10.0.0.1:8000/metrics'] } },
});
const capacity = capacityOfSpec(spec);
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

function decision(over: Partial<Decision> = {}): Decision {
  return {
    decidedAtSeconds: T0 / 1000,
    desiredReplicas: 3,
    bindingConstraint: 'kv-memory',
    reason: 'kv-memory: demand 900,000 tokens ... -> 3',
    demandTokens: 900_000.4,
    inflightTokens: 880_000,
    tokensPerReplica: capacity.tokensPerReplica,
    requestTokensP95: 7500,
    fits: true,
    metricsAvailable: true,
    fallbackActive: false,
    terms: { kvReplicas: 3 },
    ...over,
  };
}

function state(d: Decision | undefined, over: Partial<ScalerState> = {}): ScalerState {
  return {
    scaler: { namespace: 'inference', name: 'llama', spec, generation: 4, uid: 'u1' },
    capacity,
    tokensPerReplica: capacity.tokensPerReplica,
    capacitySource: 'model',
    replicas: { current: 2, ready: 2 },
    ...(d === undefined ? {} : { decision: d }),
    ...(d === undefined
      ? {}
      : {
          observation: {
            observedAtSeconds: d.decidedAtSeconds,
            podsReporting: 2,
            inflightTokens: 880_000,
            provenance: {},
          },
        }),
    deciderState: initialDeciderState(T0 / 1000),
    ...over,
  };
}

const condition = (s: TokenScalerStatus, type: string) => s.conditions?.find((c) => c.type === type);

describe('computeStatus', () => {
  it('reports the decision with DESIGN.md field names and valid conditions, accepted by the CRD schema', () => {
    const status = computeStatus(state(decision()), {
      nowMs: T0,
      generation: 4,
      previous: undefined,
      hpaName: 'tokenscaler-llama',
    });
    expect(status).toMatchObject({
      observedGeneration: 4,
      desiredReplicas: 3,
      currentReplicas: 2,
      readyReplicas: 2,
      demandTokens: 900_000,
      inflightTokens: 880_000,
      tokensPerReplica: capacity.tokensPerReplica,
      kvBytesPerToken: capacity.kvBytesPerToken,
      requestTokensP95: 7500,
      bindingConstraint: 'kv-memory',
      hpaName: 'tokenscaler-llama',
      lastDecisionTime: '2026-01-01T12:00:00Z',
    });
    expect(status.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual([
      'Ready=True/Deciding',
      'MetricsAvailable=True/MetricsFresh',
      'Fits=True/RequestFits',
    ]);
    expect(tokenScalerStatusSchema.safeParse(status).success).toBe(true);
    expect(validateStructural(statusOpenApiSchema(), status, 'status').errors).toEqual([]);
  });

  it.each([
    [
      'capacity model invalid',
      state(decision(), { capacityError: 'model does not fit' }),
      'Ready',
      'False',
      'CapacityModelInvalid',
    ],
    ['no decision yet', state(undefined), 'Ready', 'Unknown', 'Pending'],
    [
      'holding without metrics',
      state(
        decision({
          metricsAvailable: false,
          bindingConstraint: 'hold',
          reason: 'hold: no token metrics for 30s',
        }),
      ),
      'MetricsAvailable',
      'False',
      'MetricsMissing',
    ],
    [
      'in fallback',
      state(
        decision({
          metricsAvailable: false,
          fallbackActive: true,
          bindingConstraint: 'fallback',
          reason: 'fallback: ...',
        }),
      ),
      'MetricsAvailable',
      'False',
      'FallbackActive',
    ],
    [
      'a request larger than a replica',
      state(decision({ fits: false, requestTokensP95: 2_000_000 })),
      'Fits',
      'False',
      'RequestTooLarge',
    ],
    [
      'request size not measured',
      state(decision({ fits: undefined })),
      'Fits',
      'Unknown',
      'RequestSizeUnknown',
    ],
  ])('%s', (_name, s, type, status, reason) => {
    const computed = computeStatus(s, { nowMs: T0, generation: 4, previous: undefined });
    expect(condition(computed, type)).toMatchObject({ status, reason, observedGeneration: 4 });
    expect(validateStructural(statusOpenApiSchema(), computed, 'status').errors).toEqual([]);
  });

  it('says the target is unreadable when the /scale read failed', () => {
    const s = state(decision(), {
      lastError: { code: 'KUBE_FORBIDDEN', message: 'get Deployment scale: forbidden', atSeconds: 1 },
    });
    expect(
      condition(
        computeStatus(s, { nowMs: T0, generation: 4, previous: undefined, targetError: 'forbidden' }),
        'Ready',
      ),
    ).toMatchObject({
      status: 'False',
      reason: 'TargetUnreadable',
    });
  });

  it('moves lastTransitionTime only when a condition flips', () => {
    const first = computeStatus(state(decision()), { nowMs: T0, generation: 4, previous: undefined });
    const later = T0 + 60_000;
    const same = computeStatus(state(decision({ decidedAtSeconds: later / 1000 })), {
      nowMs: later,
      generation: 4,
      previous: first,
    });
    expect(condition(same, 'MetricsAvailable')?.lastTransitionTime).toBe('2026-01-01T12:00:00Z');
    const lost = computeStatus(state(decision({ decidedAtSeconds: later / 1000, metricsAvailable: false })), {
      nowMs: later,
      generation: 4,
      previous: first,
    });
    expect(condition(lost, 'MetricsAvailable')?.lastTransitionTime).toBe('2026-01-01T12:01:00Z');
    expect(condition(lost, 'Ready')?.lastTransitionTime).toBe('2026-01-01T12:00:00Z');
  });

  it('keeps the last five changes of desired replicas, newest first, and sets lastScaleTime on a change', () => {
    let previous: TokenScalerStatus | undefined;
    for (let i = 0; i < 8; i += 1) {
      const at = T0 + i * 60_000;
      previous = computeStatus(
        state(decision({ decidedAtSeconds: at / 1000, desiredReplicas: 2 + (i % 2) })),
        { nowMs: at, generation: 4, previous },
      );
    }
    expect(previous?.recentDecisions).toHaveLength(RECENT_DECISIONS);
    expect(previous?.recentDecisions?.[0]).toMatchObject({
      time: '2026-01-01T12:07:00Z',
      fromReplicas: 2,
      desiredReplicas: 3,
    });
    expect(previous?.lastScaleTime).toBe('2026-01-01T12:07:00Z');
    const first = computeStatus(state(decision()), { nowMs: T0, generation: 4, previous: undefined });
    expect(first.lastScaleTime).toBeUndefined();
    expect(first.recentDecisions).toEqual([expect.objectContaining({ desiredReplicas: 3 })]);
  });

  it('raises ReplicasContested while a fight is on and clears it after', () => {
    const contested = computeStatus(state(decision()), {
      nowMs: T0,
      generation: 4,
      previous: undefined,
      contested: { message: '"argocd" set 2' },
    });
    expect(condition(contested, 'ReplicasContested')).toMatchObject({
      status: 'True',
      reason: 'AnotherWriter',
    });
    const cleared = computeStatus(state(decision()), {
      nowMs: T0 + 1000,
      generation: 4,
      previous: contested,
    });
    expect(condition(cleared, 'ReplicasContested')).toMatchObject({
      status: 'False',
      reason: 'SingleWriter',
    });
  });
});

describe('writing only what changed', () => {
  const base = computeStatus(state(decision()), { nowMs: T0, generation: 4, previous: undefined });

  it('a new tick with the same figures is not a change; other figures are', () => {
    const next = computeStatus(state(decision({ decidedAtSeconds: T0 / 1000 + 15 })), {
      nowMs: T0 + 15_000,
      generation: 4,
      previous: base,
    });
    expect(next.lastDecisionTime).not.toBe(base.lastDecisionTime);
    expect(statusChanged(base, next)).toBe(false);
    const busier = computeStatus(state(decision({ demandTokens: 950_000 })), {
      nowMs: T0,
      generation: 4,
      previous: base,
    });
    expect(statusChanged(base, busier)).toBe(true);
    const edited = computeStatus(state(decision()), { nowMs: T0, generation: 5, previous: base });
    expect(statusChanged(base, edited)).toBe(true);
    expect(statusChanged(undefined, base)).toBe(true);
  });

  it('the merge patch removes fields that went away', () => {
    const without = { ...base };
    delete without.hpaName;
    expect(statusPatch({ ...base, hpaName: 'x' }, without).hpaName).toBeNull();
    expect(statusPatch(undefined, base)).toEqual(base);
  });

  it('reads a stored status leniently: a bad field is dropped, the rest kept', () => {
    expect(parseStoredStatus({ desiredReplicas: 3, reason: 'ok', conditions: 'broken' })).toEqual({
      desiredReplicas: 3,
      reason: 'ok',
    });
    expect(parseStoredStatus(undefined)).toBeUndefined();
  });
});
