import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { tokenScalerSpecSchema } from '../config/tokenscaler-spec.ts';
import { initialDeciderState } from '../core/decide.ts';
import type { ScalerState } from '../reconcile/scaler-state.ts';
import { ControllerMetrics } from './controller-metrics.ts';

const state = (name: string, overrides: Partial<ScalerState> = {}): ScalerState => ({
  scaler: {
    namespace: 'inference',
    name,
    generation: 1,
    spec: tokenScalerSpecSchema.parse({
      scaleTargetRef: { name: 'vllm' },
      maxReplicas: 8,
      model: { preset: 'llama-3.1-8b' },
      accelerator: { preset: 'h100-80gb' },
      engine: { kind: 'vllm' },
      metrics: { scrape: { urls: ['http://127.0.0.1:9/metrics'] } },
    }),
  },
  deciderState: initialDeciderState(0),
  tokensPerReplica: 400_000,
  capacitySource: 'engine',
  replicas: { current: 3, ready: 2 },
  observation: {
    observedAtSeconds: 10,
    podsReporting: 2,
    inflightTokens: 500_000,
    requestInputTokens: { p50: 900, p95: 7_000 },
    promptTokensPerSecond: 3_000,
    generationTokensPerSecond: 1_000,
    provenance: {},
  },
  decision: {
    decidedAtSeconds: 10,
    desiredReplicas: 2,
    bindingConstraint: 'kv-memory',
    reason: 'r',
    demandTokens: 600_000,
    tokensPerReplica: 400_000,
    metricsAvailable: true,
    fallbackActive: false,
    terms: { kvReplicas: 2 },
  },
  lastError: { code: 'SCRAPE_TIMEOUT', message: 'slow', atSeconds: 10 },
  lastTickDurationSeconds: 0.02,
  ...overrides,
});

const value = async (registry: Registry, metric: string, labels: Record<string, string>) => {
  const m = await registry.getSingleMetric(metric)?.get();
  return m?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
};

describe('ControllerMetrics', () => {
  it('publishes a decision with bounded labels and removes every series of a deleted scaler', async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    metrics.onDecision(state('a'));
    metrics.onDecision(state('b'));
    const a = { namespace: 'inference', name: 'a' };
    expect(await value(registry, 'tokenscaler_desired_replicas', a)).toBe(2);
    expect(await value(registry, 'tokenscaler_demand_tokens', a)).toBe(600_000);
    expect(await value(registry, 'tokenscaler_tokens_per_replica', { ...a, source: 'engine' })).toBe(400_000);
    expect(await value(registry, 'tokenscaler_binding_constraint', { ...a, constraint: 'kv-memory' })).toBe(
      1,
    );
    expect(await value(registry, 'tokenscaler_binding_constraint', { ...a, constraint: 'queue' })).toBe(0);
    expect(
      await value(registry, 'tokenscaler_request_tokens', { ...a, direction: 'input', quantile: '0.95' }),
    ).toBe(7_000);
    expect(await value(registry, 'tokenscaler_input_output_ratio', a)).toBe(3);
    expect(await value(registry, 'tokenscaler_source_errors_total', { ...a, code: 'SCRAPE_TIMEOUT' })).toBe(
      1,
    );
    expect(await value(registry, 'tokenscaler_scalers', {})).toBe(2);
    // A percentile that is not measured has no series (never a zero).
    expect(
      await value(registry, 'tokenscaler_request_tokens', { ...a, direction: 'output', quantile: '0.95' }),
    ).toBeUndefined();

    metrics.onScalerRemoved('inference', 'a');
    const text = await registry.metrics();
    expect(text).not.toMatch(/name="a"/);
    expect(text).toMatch(/name="b"/);
    expect(await value(registry, 'tokenscaler_scalers', {})).toBe(1);
  });

  it('moves the capacity series when its source changes', async () => {
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry);
    metrics.onDecision(state('a'));
    metrics.onDecision(state('a', { capacitySource: 'model', tokensPerReplica: 446_368 }));
    const text = await registry.metrics();
    expect(text).toMatch(
      /tokenscaler_tokens_per_replica\{namespace="inference",name="a",source="model"\} 446368/,
    );
    expect(text).not.toMatch(/source="engine"/);
  });
});
