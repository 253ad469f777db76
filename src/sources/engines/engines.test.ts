import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  engineState,
  expectedRates,
  gatewayMetrics,
  sglangMetrics,
  tgiMetrics,
  trtllmMetrics,
  vllmMetrics,
} from '../../../test/support/engine-payloads.ts';
import type { EngineKind } from '../../config/tokenscaler-spec.ts';
import type { Observation } from '../../core/observation.ts';
import { createObservationSource } from '../observation-source.ts';
import { engineProfile, requireEngineProfile } from './registry.ts';
import { vllmEngineCapacityTokens } from './vllm.ts';

const FIXTURES = new URL('../../../../shared/reference/fixtures/', import.meta.url);

/** Serves fixed bodies per URL; a function body is called on every request (changing metrics). */
function fakeFetch(routes: Record<string, string | (() => string)>) {
  return async (url: string) => {
    const body = routes[url];
    if (body === undefined)
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      });
    return new Response(typeof body === 'function' ? body() : body, {
      headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
    });
  };
}

function source(kind: EngineKind, routes: Record<string, string | (() => string)>) {
  return createObservationSource(
    {
      engine: { kind },
      metrics: { scrape: { urls: Object.keys(routes), path: '/metrics', scheme: 'http', timeoutSeconds: 5 } },
    },
    { fetch: fakeFetch(routes), clockMs: () => 1_753_800_000_000 },
  );
}

async function observeOnce(kind: EngineKind, text: string): Promise<Observation> {
  const result = await source(kind, { 'http://pod-a:8000/metrics': text }).observe(
    1000,
    new AbortController().signal,
  );
  if (!result.ok) throw result.error;
  return result.observation;
}

/** Two ticks `dt` seconds apart over a payload that is a function of time. */
async function observeTwice(
  kind: EngineKind,
  pods: Record<string, (t: number) => string>,
  dt = 10,
): Promise<Observation> {
  let t = 0;
  const routes = Object.fromEntries(Object.entries(pods).map(([url, at]) => [url, () => at(t)]));
  const s = source(kind, routes);
  const signal = new AbortController().signal;
  const first = await s.observe(1000, signal);
  expect(first.ok).toBe(true);
  if (first.ok) {
    // No rates and no window percentiles on the first tick: undefined, never 0.
    expect(first.observation.promptTokensPerSecond).toBeUndefined();
    expect(first.observation.requestInputTokens).toBeUndefined();
  }
  t = dt;
  const second = await s.observe(1000 + dt, signal);
  if (!second.ok) throw second.error;
  return second.observation;
}

describe('engine profiles on the reference fixtures (one scrape: gauges and capacity)', () => {
  it('vLLM 0.11 synthetic', async () => {
    const o = await observeOnce('vllm', readFileSync(new URL('vllm-0.11-synthetic.prom', FIXTURES), 'utf8'));
    expect(o).toMatchObject({
      podsReporting: 1,
      runningRequests: 24,
      waitingRequests: 7,
      engineKvUsageRatio: 0.8125,
      // num_gpu_blocks 33676 x block_size 16
      engineKvCapacityTokensPerReplica: 538_816,
      // No histogram window yet, so the estimate is the KV held now: 0.8125 x 538,816 = 437,788.
      inflightTokens: 437_788,
    });
    expect(o.waitingTokens).toBeUndefined(); // 7 waiting, but no mean prompt yet
    expect(o.provenance).toMatchObject({
      runningRequests: 'measured',
      engineKvCapacityTokensPerReplica: 'measured',
      inflightTokens: 'estimated',
    });
  });

  it('vLLM 0.7 (old KV usage name, zero running)', async () => {
    const o = await observeOnce('vllm', readFileSync(new URL('vllm-0.7-v1.prom', FIXTURES), 'utf8'));
    expect(o).toMatchObject({ runningRequests: 0, engineKvUsageRatio: 0, inflightTokens: 0 });
    expect(o.waitingRequests).toBeUndefined();
    expect(o.engineKvCapacityTokensPerReplica).toBeUndefined();
  });

  it('vLLM 0.10.0 (engine label, _created series)', async () => {
    const o = await observeOnce('vllm', readFileSync(new URL('vllm-0.10.0.prom', FIXTURES), 'utf8'));
    expect(o.engineKvUsageRatio).toBe(9.75010481363281e-6);
    expect(o.runningRequests).toBeUndefined();
  });

  it('SGLang docs sample: capacity estimated from used / usage', async () => {
    const o = await observeOnce(
      'sglang',
      readFileSync(new URL('sglang-docs-00b08c4.prom', FIXTURES), 'utf8'),
    );
    expect(o).toMatchObject({ waitingRequests: 2826, engineKvUsageRatio: 0.28, inflightTokens: 123_859 });
    // 123,859 used tokens at 28% usage -> about 442,354 tokens of pool.
    expect(o.engineKvCapacityTokensPerReplica).toBeCloseTo(123_859 / 0.28, 6);
    expect(o.provenance.engineKvCapacityTokensPerReplica).toBe('estimated');
  });

  it('Triton TRT-LLM README sample', async () => {
    const o = await observeOnce(
      'trtllm',
      readFileSync(new URL('triton-trtllm-readme-0b9d7d5.prom', FIXTURES), 'utf8'),
    );
    // max 6239 blocks x 64 tokens per block
    expect(o).toMatchObject({ engineKvUsageRatio: 0.4875, engineKvCapacityTokensPerReplica: 399_296 });
  });
});

describe('engine profiles over two ticks (rates, percentiles, estimates)', () => {
  const state = engineState();
  const rates = expectedRates([state]);
  const dt = 10;

  it('vLLM: rates from counters, percentiles from histogram windows, estimates marked', async () => {
    const o = await observeTwice(
      'vllm',
      { 'http://a/metrics': (t) => vllmMetrics(state, t, { full: true }) },
      dt,
    );
    expect(o.promptTokensPerSecond).toBeCloseTo(rates.promptTokensPerSecond, 6);
    expect(o.generationTokensPerSecond).toBeCloseTo(rates.generationTokensPerSecond, 6);
    expect(o.preemptionsPerSecond).toBeCloseTo(0.05, 9);
    // DEFAULT_INPUT: 20 prompts; 10 are <= 1000 and 19 are <= 5000 (see engine-payloads.ts), so
    // P50 = 1000 exactly, P95 = 5000 exactly, P99 lands in +Inf and saturates at 5000.
    expect(o.requestInputTokens?.p50).toBeCloseTo(1000, 6);
    expect(o.requestInputTokens?.p95).toBeCloseTo(5000, 6);
    expect(o.requestInputTokens?.p99).toBe(5000);
    // running 24 x (mean in 1617.5 + mean out 406.75) = 48,582 < KV held 437,788 -> KV wins; the
    // 7 waiting requests add 7 x 2,024.25 = 14,169.75 -> 451,957.75.
    expect(state.input.meanTokens).toBe(1617.5);
    expect(state.output.meanTokens).toBe(406.75);
    expect(o.inflightTokens).toBeCloseTo(437_788 + 7 * (1617.5 + 406.75), 6);
    // 7 waiting x mean prompt 1617.5
    expect(o.waitingTokens).toBeCloseTo(7 * 1617.5, 6);
    expect(o.provenance).toMatchObject({
      inflightTokens: 'estimated',
      waitingTokens: 'estimated',
      promptTokensPerSecond: 'measured',
      requestInputTokens: 'measured',
    });
  });

  it('vLLM fleet: sums pods, averages usage, mixes old and new KV names, min capacity', async () => {
    const big = engineState({ runningRequests: 10, kvUsage: 0.5, numGpuBlocks: 40_000, engines: 2 });
    const o = await observeTwice(
      'vllm',
      {
        'http://a/metrics': (t) => vllmMetrics(state, t),
        'http://b/metrics': (t) => vllmMetrics(big, t, { legacy: true }),
      },
      dt,
    );
    expect(o.podsReporting).toBe(2);
    expect(o.runningRequests).toBe(34);
    expect(o.engineKvUsageRatio).toBeCloseTo((0.8125 + 0.5) / 2, 12);
    // pod a: 33,676 x 16 = 538,816; pod b: two engines x 40,000 x 16 = 1,280,000; the smaller replica.
    expect(o.engineKvCapacityTokensPerReplica).toBe(538_816);
    // KV held: 0.8125 x 538,816 + 0.5 x 1,280,000 = 1,077,788, plus every waiting request at the
    // fleet's mean tokens per finished request (both pods serve the same distributions).
    const perRequest = state.input.meanTokens + state.output.meanTokens;
    expect(o.inflightTokens).toBeCloseTo(1_077_788 + (o.waitingRequests ?? Number.NaN) * perRequest, 6);
    expect(o.promptTokensPerSecond).toBeCloseTo(expectedRates([state, big]).promptTokensPerSecond, 6);
  });

  it('SGLang with TP=4 ranks all reporting: ranks are not counted four times', async () => {
    const o = await observeTwice(
      'sglang',
      { 'http://a/metrics': (t) => sglangMetrics(state, t, { tp: 4 }) },
      dt,
    );
    expect(o).toMatchObject({
      runningRequests: 24,
      waitingRequests: 7,
      engineKvCapacityTokensPerReplica: 538_816,
    });
    expect(o.provenance.engineKvCapacityTokensPerReplica).toBe('measured');
    expect(o.promptTokensPerSecond).toBeCloseTo(rates.promptTokensPerSecond, 6);
    expect(o.preemptionsPerSecond).toBeCloseTo(0.05, 9);
    expect(o.requestOutputTokens?.p50).toBeDefined();
  });

  it('TGI: reserved batch tokens are measured in-flight tokens', async () => {
    const o = await observeTwice('tgi', { 'http://a/metrics': (t) => tgiMetrics(state, t) }, dt);
    expect(o).toMatchObject({
      inflightTokens: 437_788,
      runningRequests: 24,
      engineKvCapacityTokensPerReplica: 538_816,
    });
    expect(o.provenance.inflightTokens).toBe('measured');
    expect(o.engineKvUsageRatio).toBeCloseTo(437_788 / 538_816, 12);
    expect(o.provenance.engineKvUsageRatio).toBe('estimated');
    expect(o.promptTokensPerSecond).toBeCloseTo(rates.promptTokensPerSecond, 6);
  });

  it.each([
    ['Triton', false],
    ['trtllm-serve', true],
  ])('TRT-LLM via %s', async (_name, serve) => {
    const o = await observeTwice(
      'trtllm',
      { 'http://a/metrics': (t) => trtllmMetrics(state, t, { serve }) },
      dt,
    );
    // 33,676 x 16 / 64 = 8,419 blocks of 64 tokens
    expect(o).toMatchObject({
      runningRequests: 24,
      waitingRequests: 7,
      engineKvCapacityTokensPerReplica: 538_816,
    });
    expect(o.promptTokensPerSecond).toBeCloseTo(rates.promptTokensPerSecond, 6);
    expect(o.generationTokensPerSecond).toBeCloseTo(rates.generationTokensPerSecond, 6);
    expect(o.waitingTokens).toBeCloseTo(7 * 1617.5, 6);
    if (serve)
      expect(o.requestInputTokens).toBeUndefined(); // trtllm-serve has no length histograms
    else expect(o.requestInputTokens?.p50).toBeDefined();
  });

  it('tokenscaler gateway: token gauges measured, rates from the tokens counter', async () => {
    const o = await observeTwice(
      'tokenscaler-gateway',
      { 'http://gw/metrics': (t) => gatewayMetrics(state, t, 90_000, 12_000) },
      dt,
    );
    expect(o).toMatchObject({ inflightTokens: 90_000, waitingTokens: 12_000, runningRequests: 31 });
    expect(o.provenance).toMatchObject({ inflightTokens: 'measured', waitingTokens: 'measured' });
    expect(o.promptTokensPerSecond).toBeCloseTo(rates.promptTokensPerSecond, 6);
    expect(o.engineKvUsageRatio).toBeUndefined();
  });
});

describe('registry', () => {
  it('has a profile for every engine kind', () => {
    for (const kind of ['vllm', 'sglang', 'tgi', 'trtllm', 'tokenscaler-gateway', 'generic'] as const) {
      expect(engineProfile(kind).kind).toBe(kind);
    }
  });

  it('names the allowed kinds for an unknown one', () => {
    expect(() => requireEngineProfile('ollama', '--engine')).toThrow(
      '--engine: unknown engine kind "ollama"; allowed: vllm, sglang, tgi, trtllm, tokenscaler-gateway, generic',
    );
  });
});

describe('vllmEngineCapacityTokens', () => {
  it.each([
    [{ num_gpu_blocks: '9271', block_size: '16' }, 148_336],
    [{ num_gpu_blocks: '9271', block_size: '16', kv_cache_size_tokens: '120000' }, 120_000],
    [{ num_gpu_blocks: 'None', block_size: '16' }, undefined],
    [{ block_size: '16' }, undefined],
    [{ num_gpu_blocks: '-5', block_size: '16' }, undefined],
  ])('%j -> %s', (labels, expected) => {
    expect(vllmEngineCapacityTokens(labels)).toBe(expected);
  });
});
