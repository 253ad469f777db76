import { describe, expect, it } from 'vitest';
import { MemoryKubeApi } from '../../test/support/fake-apiserver-memory.ts';
import { FakeStore, resourceKey } from '../../test/support/fake-apiserver-store.ts';
import { tokenScalerSpecSchema } from '../config/tokenscaler-spec.ts';
import { initialDeciderState } from '../core/decide.ts';
import type { Decision } from '../core/decision.ts';
import type { ScalerState } from '../reconcile/scaler-state.ts';
import { EventRecorder, ScalerEvents } from './events.ts';
import type { KubeObject } from './kube-api.ts';
import { AlwaysLeader } from './leader-election.ts';

const EVENTS = resourceKey('events.k8s.io', 'v1', 'events');
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const signal = () => AbortSignal.timeout(5000);
const spec = tokenScalerSpecSchema.parse({
  scaleTargetRef: { name: 'vllm' },
  maxReplicas: 8,
  model: { preset: 'llama-3.1-8b' },
  accelerator: { preset: 'h100-80gb' },
  engine: { kind: 'vllm' },
  metrics: { scrape: { urls: ['http://10.0.0.1:8000/metrics'] } },
});

function tick(d: Partial<Decision>): ScalerState {
  return {
    scaler: { namespace: 'inference', name: 'llama', spec, generation: 1, uid: 'u1' },
    deciderState: initialDeciderState(0),
    decision: {
      decidedAtSeconds: 0,
      desiredReplicas: 3,
      bindingConstraint: 'kv-memory',
      reason: 'kv-memory: ...',
      tokensPerReplica: 400_000,
      metricsAvailable: true,
      fallbackActive: false,
      terms: {},
      ...d,
    },
  };
}

function setup(stored?: Record<string, unknown>) {
  const api = new MemoryKubeApi(new FakeStore());
  const clock = { ms: Date.UTC(2026, 0, 1) };
  const leader = new AlwaysLeader('pod-0');
  const recorder = new EventRecorder({
    api,
    leader,
    nowMs: () => clock.ms,
    logger: quiet,
    seriesPatchSeconds: 60,
  });
  const object =
    stored === undefined
      ? undefined
      : ({ apiVersion: 'v', kind: 'TokenScaler', metadata: { name: 'llama' }, status: stored } as KubeObject);
  const events = new ScalerEvents(recorder, leader, () => object);
  const list = () => api.store.list(EVENTS, 'inference').items;
  return { api, clock, recorder, events, list };
}

describe('events on transitions', () => {
  it('reports scaling, metrics lost and recovered, fallback and a request too large, once each', async () => {
    const { events, list } = setup();
    await events.onDecision(tick({}), signal());
    await events.onDecision(tick({}), signal());
    await events.onDecision(tick({ desiredReplicas: 5, reason: 'kv-memory: more' }), signal());
    await events.onDecision(tick({ desiredReplicas: 5, metricsAvailable: false }), signal());
    await events.onDecision(
      tick({
        desiredReplicas: 5,
        metricsAvailable: false,
        fallbackActive: true,
        reason: 'fallback: no token metrics for 130s',
      }),
      signal(),
    );
    await events.onDecision(
      tick({ desiredReplicas: 5, metricsAvailable: false, fallbackActive: true }),
      signal(),
    );
    await events.onDecision(tick({ desiredReplicas: 5, fits: false, requestTokensP95: 900_000 }), signal());
    const seen = list().map((e) => [e.reason, e.type, e.note]);
    expect(seen.map(([r]) => r).sort()).toEqual([
      'DoesNotFit',
      'FallbackEngaged',
      'MetricsLost',
      'MetricsRecovered',
      'Scaled',
    ]);
    expect(seen.find(([r]) => r === 'Scaled')?.[2]).toBe('desired replicas 3 -> 5: kv-memory: more');
    expect(seen.find(([r]) => r === 'DoesNotFit')).toEqual([
      'DoesNotFit',
      'Warning',
      'the P95 request needs 900000 tokens but one replica holds 400000',
    ]);
    const event = list()[0] as Record<string, unknown>;
    expect(event).toMatchObject({
      reportingController: 'tokenscaler.dev/controller',
      reportingInstance: 'pod-0',
      regarding: { kind: 'TokenScaler', name: 'llama', uid: 'u1' },
    });
  });

  it('a new leader starts from the stored status: no repeat of a fallback already reported', async () => {
    const { events, list } = setup({
      desiredReplicas: 5,
      fallbackActive: true,
      conditions: [
        {
          type: 'MetricsAvailable',
          status: 'False',
          reason: 'FallbackActive',
          message: 'x',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    });
    await events.onDecision(
      tick({ desiredReplicas: 5, metricsAvailable: false, fallbackActive: true }),
      signal(),
    );
    expect(list()).toEqual([]);
  });

  it('folds repeats into the first Event as a series', async () => {
    const { recorder, clock, list } = setup();
    const input = {
      scaler: { namespace: 'inference', name: 'llama' },
      type: 'Warning' as const,
      reason: 'ReplicasContested' as const,
      action: 'Scale',
      note: 'argocd set 2',
    };
    await recorder.record(input, signal());
    clock.ms += 30_000;
    await recorder.record(input, signal());
    clock.ms += 40_000;
    await recorder.record(input, signal());
    expect(list()).toHaveLength(1);
    expect(list()[0]?.series).toEqual({ count: 3, lastObservedTime: '2026-01-01T00:01:10.000000Z' });
    clock.ms += 3_600_000;
    await recorder.record(input, signal());
    expect(list()).toHaveLength(2);
  });
});
