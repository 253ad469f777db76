import { describe, expect, it } from 'vitest';
import { type TokenScalerSpecInput, tokenScalerSpecSchema } from '../config/tokenscaler-spec.ts';
import type { Observation } from '../core/observation.ts';
import { TokenscalerError } from '../errors.ts';
import type { DecisionListener, Logger, ObservationSource, ScalerDefinition } from './ports.ts';
import { Reconciler } from './reconciler.ts';
import type { ScalerState } from './scaler-state.ts';

const spec = (overrides: Partial<TokenScalerSpecInput> = {}) =>
  tokenScalerSpecSchema.parse({
    scaleTargetRef: { name: 'vllm' },
    minReplicas: 1,
    maxReplicas: 20,
    model: { preset: 'llama-3.1-8b', weightsGiB: 14.99 },
    accelerator: { memoryGiB: 79.2 },
    engine: { kind: 'vllm', reservedGiB: 1.8 },
    metrics: { scrape: { urls: ['http://127.0.0.1:1/metrics'] } },
    ...overrides,
  });

const definition = (
  name: string,
  overrides: Partial<TokenScalerSpecInput> = {},
  generation = 1,
): ScalerDefinition => ({
  namespace: 'inference',
  name,
  spec: spec(overrides),
  generation,
});

const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** A source whose answers the test scripts per scaler. */
class ScriptedSource implements ObservationSource {
  answer: (nowSeconds: number) => Promise<Observation>;
  closed = false;
  constructor(answer: (nowSeconds: number) => Promise<Observation>) {
    this.answer = answer;
  }
  observe(nowSeconds: number): Promise<Observation> {
    return this.answer(nowSeconds);
  }
  close() {
    this.closed = true;
  }
}

function harness(answers: Record<string, (now: number) => Promise<Observation>>) {
  let nowMs = 1_000_000;
  const sources = new Map<string, ScriptedSource>();
  const published: ScalerState[] = [];
  const removed: string[] = [];
  const listener: DecisionListener = {
    onDecision: (state) => {
      published.push(state);
    },
    onScalerRemoved: (ns, name) => {
      removed.push(`${ns}/${name}`);
    },
  };
  const reconciler = new Reconciler({
    sources: (d) => {
      const source = new ScriptedSource(answers[d.name] ?? (() => Promise.reject(new Error('no script'))));
      sources.set(d.name, source);
      return source;
    },
    replicas: { read: async () => undefined },
    listeners: [listener],
    logger: silentLogger,
    nowMs: () => nowMs,
    tickSeconds: 15,
  });
  return {
    reconciler,
    sources,
    published,
    removed,
    advance: (seconds: number) => {
      nowMs += seconds * 1000;
    },
  };
}

const observation = (now: number, inflightTokens: number, extra: Partial<Observation> = {}): Observation => ({
  observedAtSeconds: now,
  podsReporting: 2,
  inflightTokens,
  provenance: { inflightTokens: 'measured' },
  ...extra,
});

describe('Reconciler', () => {
  it('observes, decides from the capacity model and publishes', async () => {
    const h = harness({ a: async (now) => observation(now, 900_000) });
    await h.reconciler.setScalers([definition('a')]);
    await h.reconciler.tick();
    const state = h.reconciler.get('inference', 'a');
    // 5.1 example: 446,368 tokens per replica; 900,000 / (446,368 x 0.8) = 2.52 -> 3.
    expect(state?.tokensPerReplica).toBe(446_368);
    expect(state?.capacitySource).toBe('model');
    expect(state?.decision?.desiredReplicas).toBe(3);
    expect(state?.decision?.bindingConstraint).toBe('kv-memory');
    expect(h.published).toHaveLength(1);
  });

  it('prefers the engine-reported capacity and reports the drift from the model', async () => {
    const h = harness({
      a: async (now) => observation(now, 900_000, { engineKvCapacityTokensPerReplica: 400_000 }),
    });
    await h.reconciler.setScalers([definition('a')]);
    await h.reconciler.tick();
    const state = h.reconciler.get('inference', 'a');
    expect(state?.tokensPerReplica).toBe(400_000);
    expect(state?.capacitySource).toBe('engine');
    expect(state?.capacityDriftRatio).toBeCloseTo(400_000 / 446_368 - 1, 6);
    expect(state?.decision?.desiredReplicas).toBe(3);
  });

  it('keeps the other scalers going when one fails, and holds the failing one', async () => {
    let failing = false;
    const h = harness({
      good: async (now) => observation(now, 100_000),
      flaky: async (now) => {
        if (failing) throw new TokenscalerError('SCRAPE_FAILED', 'connection refused');
        return observation(now, 2_000_000);
      },
    });
    await h.reconciler.setScalers([definition('good'), definition('flaky')]);
    await h.reconciler.tick();
    failing = true;
    h.advance(15);
    await h.reconciler.tick();
    const flaky = h.reconciler.get('inference', 'flaky');
    expect(flaky?.decision?.bindingConstraint).toBe('hold');
    expect(flaky?.decision?.desiredReplicas).toBe(6);
    expect(flaky?.lastError).toMatchObject({ code: 'SCRAPE_FAILED', message: 'connection refused' });
    expect(h.reconciler.get('inference', 'good')?.decision?.metricsAvailable).toBe(true);
  });

  it('bounds a hanging source by the per-scaler deadline', async () => {
    const h = harness({ slow: () => new Promise(() => {}), fast: async (now) => observation(now, 10_000) });
    const reconciler = new Reconciler({
      sources: (d) =>
        d.name === 'slow'
          ? {
              observe: (_now, signal) =>
                new Promise((_, reject) =>
                  signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
                ),
            }
          : { observe: async (now) => observation(now, 10_000) },
      replicas: { read: async () => undefined },
      listeners: [],
      logger: silentLogger,
      nowMs: () => Date.now(),
      tickSeconds: 1,
      scalerDeadlineSeconds: 0.05,
    });
    void h;
    await reconciler.setScalers([definition('slow'), definition('fast')]);
    await reconciler.tick();
    expect(reconciler.get('inference', 'slow')?.lastError?.code).toBe('DEADLINE_EXCEEDED');
    expect(reconciler.get('inference', 'fast')?.decision?.metricsAvailable).toBe(true);
  });

  it('survives a throwing listener', async () => {
    const reconciler = new Reconciler({
      sources: () => ({ observe: async (now) => observation(now, 10_000) }),
      replicas: { read: async () => ({ current: 3, ready: 2 }) },
      listeners: [
        {
          onDecision: () => {
            throw new Error('status write failed');
          },
        },
      ],
      logger: silentLogger,
      nowMs: () => 5_000_000,
      tickSeconds: 15,
    });
    await reconciler.setScalers([definition('a')]);
    await reconciler.tick();
    expect(reconciler.get('inference', 'a')?.replicas).toEqual({ current: 3, ready: 2 });
    expect(reconciler.progress.ticks).toBe(1);
  });

  it('keeps the demand history across a spec change, closes replaced and removed sources', async () => {
    const h = harness({ a: async (now) => observation(now, 900_000) });
    await h.reconciler.setScalers([definition('a')]);
    await h.reconciler.tick();
    const firstSource = h.sources.get('a');
    await h.reconciler.setScalers([definition('a', { maxReplicas: 2 }, 2)]);
    expect(firstSource?.closed).toBe(true);
    h.advance(15);
    await h.reconciler.tick();
    const state = h.reconciler.get('inference', 'a');
    expect(state?.decision?.bindingConstraint).toBe('max');
    expect(state?.deciderState.demandSamples).toHaveLength(2);
    await h.reconciler.setScalers([]);
    expect(h.removed).toEqual(['inference/a']);
    expect(h.reconciler.list()).toHaveLength(0);
  });

  it('reports a spec whose model does not fit as a capacity error and holds', async () => {
    const h = harness({ big: async (now) => observation(now, 10_000) });
    await h.reconciler.setScalers([definition('big', { model: { preset: 'llama-3.1-405b' } })]);
    await h.reconciler.tick();
    const state = h.reconciler.get('inference', 'big');
    expect(state?.capacity?.fits).toBe(false);
    expect(state?.decision?.bindingConstraint).toBe('hold');
    expect(state?.decision?.fits).toBe(false);
  });
});
