import { describe, expect, it } from 'vitest';
import { MemoryKubeApi } from '../../test/support/fake-apiserver-memory.ts';
import { FakeStore, resourceKey } from '../../test/support/fake-apiserver-store.ts';
import { type ScalerDefinition, tokenScalerSpecSchema } from '../config/tokenscaler-spec.ts';
import { initialDeciderState } from '../core/decide.ts';
import type { ScalerState } from '../reconcile/scaler-state.ts';
import { EventRecorder } from './events.ts';
import { DEFAULT_BEHAVIOR, desiredHpa, HpaManager } from './hpa-manager.ts';
import { AlwaysLeader, type LeaderState } from './leader-election.ts';

const HPAS = resourceKey('autoscaling', 'v2', 'horizontalpodautoscalers');
const EVENTS = resourceKey('events.k8s.io', 'v1', 'events');
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const signal = () => AbortSignal.timeout(5000);

function definition(over: Record<string, unknown> = {}, generation = 1): ScalerDefinition {
  return {
    namespace: 'inference',
    name: 'llama',
    uid: 'uid-1',
    generation,
    spec: tokenScalerSpecSchema.parse({
      scaleTargetRef: { name: 'vllm' },
      minReplicas: 2,
      maxReplicas: 8,
      model: { preset: 'llama-3.1-8b' },
      accelerator: { preset: 'h100-80gb' },
      engine: { kind: 'vllm' },
      metrics: { scrape: { urls: ['http://10.0.0.1:8000/metrics'] } },
      hpa: { create: true },
      ...over,
    }),
  };
}
const stateOf = (scaler: ScalerDefinition): ScalerState => ({ scaler, deciderState: initialDeciderState(0) });

function setup(leader: LeaderState = new AlwaysLeader('me'), exists = true) {
  const api = new MemoryKubeApi(new FakeStore());
  const clock = { ms: Date.UTC(2026, 0, 1) };
  const recorder = new EventRecorder({ api, leader, nowMs: () => clock.ms, logger: quiet });
  const manager = new HpaManager({
    api,
    leader,
    recorder,
    logger: quiet,
    exists: () => exists,
    nowMs: () => clock.ms,
    resyncSeconds: 300,
  });
  const reasons = () => api.store.list(EVENTS, 'inference').items.map((e) => e.reason);
  return { api, manager, reasons, clock };
}

describe('the owned HPA', () => {
  it('reads tokenscaler_desired_replicas of this scaler with AverageValue 1, owned by the TokenScaler', () => {
    expect(desiredHpa(definition())).toMatchObject({
      metadata: {
        name: 'tokenscaler-llama',
        labels: { 'app.kubernetes.io/managed-by': 'tokenscaler', 'tokenscaler.dev/name': 'llama' },
        ownerReferences: [{ kind: 'TokenScaler', name: 'llama', uid: 'uid-1', controller: true }],
      },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'vllm' },
        minReplicas: 2,
        maxReplicas: 8,
        metrics: [
          {
            type: 'External',
            external: {
              metric: {
                name: 'tokenscaler_desired_replicas',
                selector: { matchLabels: { 'tokenscaler.dev/name': 'llama' } },
              },
              target: { type: 'AverageValue', averageValue: '1' },
            },
          },
        ],
        behavior: DEFAULT_BEHAVIOR,
      },
    });
    // tokenscaler stabilizes scale-down itself; the HPA must not add its default 300 s window.
    expect(DEFAULT_BEHAVIOR.scaleDown?.stabilizationWindowSeconds).toBe(0);
    // The metric is the decision itself: no 10% band that would ignore one more replica.
    expect(DEFAULT_BEHAVIOR.scaleUp?.tolerance).toBe(0);
    expect(DEFAULT_BEHAVIOR.scaleDown?.tolerance).toBe(0);
  });

  it('is created, updated when the scaler changes, and left alone when nothing changed', async () => {
    const { api, manager, reasons } = setup();
    await manager.onDecision(stateOf(definition()), signal());
    expect(api.store.get(HPAS, 'inference', 'tokenscaler-llama').spec).toMatchObject({ maxReplicas: 8 });
    const calls = api.actions.length;
    await manager.onDecision(stateOf(definition()), signal());
    expect(api.actions.length).toBe(calls);
    await manager.onDecision(stateOf(definition({ maxReplicas: 12 }, 2)), signal());
    expect(api.store.get(HPAS, 'inference', 'tokenscaler-llama').spec).toMatchObject({ maxReplicas: 12 });
    expect(reasons().sort()).toEqual(['HPACreated', 'HPAUpdated']);
  });

  it('puts back a hand edit at the next resync', async () => {
    const { api, manager, clock } = setup();
    await manager.onDecision(stateOf(definition()), signal());
    api.store.mergePatch(HPAS, 'inference', 'tokenscaler-llama', { spec: { maxReplicas: 99 } });
    clock.ms += 60_000;
    await manager.onDecision(stateOf(definition()), signal());
    expect(api.store.get(HPAS, 'inference', 'tokenscaler-llama').spec).toMatchObject({ maxReplicas: 99 });
    clock.ms += 300_000;
    await manager.onDecision(stateOf(definition()), signal());
    expect(api.store.get(HPAS, 'inference', 'tokenscaler-llama').spec).toMatchObject({ maxReplicas: 8 });
  });

  it('does not fight an API server that drops the tolerance field (feature gate off)', async () => {
    const { api, manager, clock, reasons } = setup();
    await manager.onDecision(stateOf(definition()), signal());
    // What an API server without HPAConfigurableTolerance stores: the behavior without `tolerance`.
    api.store.mergePatch(HPAS, 'inference', 'tokenscaler-llama', {
      spec: { behavior: { scaleUp: { tolerance: null }, scaleDown: { tolerance: null } } },
    });
    expect(JSON.stringify(api.store.get(HPAS, 'inference', 'tokenscaler-llama'))).not.toMatch(/tolerance/);
    clock.ms += 400_000;
    const calls = api.actions.length;
    await manager.onDecision(stateOf(definition()), signal());
    // It re-reads the HPA at the resync and finds nothing to put back.
    expect(api.actions.slice(calls).map((a) => a.op)).toEqual(['getHpa']);
    expect(reasons()).toEqual(['HPACreated']);
  });

  it('never touches an HPA of the same name that it does not own', async () => {
    const { api, manager, reasons } = setup();
    api.store.create(HPAS, 'inference', {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'tokenscaler-llama' },
      spec: { maxReplicas: 3 },
    });
    await manager.onDecision(stateOf(definition()), signal());
    expect(api.store.get(HPAS, 'inference', 'tokenscaler-llama').spec).toEqual({ maxReplicas: 3 });
    expect(reasons()).toEqual(['HPAConflict']);
  });

  it('deletes it when spec.hpa.create turns false or the scaler is deleted, not when the controller stops', async () => {
    const { api, manager } = setup();
    await manager.onDecision(stateOf(definition()), signal());
    await manager.onDecision(stateOf(definition({ hpa: { create: false } }, 2)), signal());
    expect(api.store.list(HPAS, 'inference').items).toEqual([]);

    const stopping = setup(new AlwaysLeader('me'), true);
    await stopping.manager.onDecision(stateOf(definition()), signal());
    await stopping.manager.onScalerRemoved('inference', 'llama');
    expect(stopping.api.store.list(HPAS, 'inference').items).toHaveLength(1);

    const deleted = setup(new AlwaysLeader('me'), false);
    await deleted.manager.onDecision(stateOf(definition()), signal());
    await deleted.manager.onScalerRemoved('inference', 'llama');
    expect(deleted.api.store.list(HPAS, 'inference').items).toEqual([]);
  });

  it('does nothing on a follower', async () => {
    const follower: LeaderState = { identity: 'f', isLeader: () => false, leader: () => 'other' };
    const { api, manager } = setup(follower);
    await manager.onDecision(stateOf(definition()), signal());
    expect(api.actions).toEqual([]);
  });
});
