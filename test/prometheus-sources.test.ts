/**
 * Integration: a real Prometheus server (Debian package) scrapes fake vLLM pods on loopback whose
 * metrics change over time; the PromQL path and the direct-scrape path must give the same
 * observation, and both must match the traffic model's true figures. Then a gauge changes and a pod
 * dies: both paths follow, and the dead pod leaves no value behind.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Observation } from '../src/core/observation.ts';
import { bucketQuantile } from '../src/sources/histogram.ts';
import { createObservationSource, type ObservationSource } from '../src/sources/observation-source.ts';
import { type EngineState, engineState, expectedRates, vllmMetrics } from './support/engine-payloads.ts';
import { type PrometheusServer, startPrometheus } from './support/prometheus-server.ts';
import { runCli } from './support/run-cli.ts';

const RATE_WINDOW_SECONDS = 6;
const t0 = Date.now();
const now = () => (Date.now() - t0) / 1000;

interface FakePod {
  state: EngineState;
  legacy: boolean;
  server: Server;
  address: string;
}

const pods: FakePod[] = [];
let prometheus: PrometheusServer;

async function startPod(state: EngineState, legacy = false): Promise<FakePod> {
  const pod = { state, legacy } as FakePod;
  pod.server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
    res.end(vllmMetrics(pod.state, now(), { legacy: pod.legacy, full: true }));
  });
  await new Promise<void>((resolve) => pod.server.listen(0, '127.0.0.1', resolve));
  pod.address = `127.0.0.1:${(pod.server.address() as AddressInfo).port}`;
  return pod;
}

const urls = () => pods.map((p) => `http://${p.address}/metrics`);

function promSource(): ObservationSource {
  return createObservationSource(
    {
      engine: { kind: 'vllm' },
      metrics: {
        prometheus: {
          url: prometheus.url,
          selector: '{namespace="inference",app="vllm"}',
          rateWindowSeconds: RATE_WINDOW_SECONDS,
          timeoutSeconds: 5,
        },
      },
    },
    { fetch: (u, i) => fetch(u, i), clockMs: () => Date.now() },
  );
}

function scrapeSource(): ObservationSource {
  return createObservationSource(
    {
      engine: { kind: 'vllm' },
      metrics: { scrape: { urls: ['http://unused'], path: '/metrics', scheme: 'http', timeoutSeconds: 2 } },
    },
    {
      fetch: (u, i) => fetch(u, i),
      clockMs: () => Date.now(),
      scrapeRateWindowSeconds: RATE_WINDOW_SECONDS,
      // Issue 5 plugs pod discovery in here; the test lists every pod it ever started.
      resolveEndpoints: async () => urls(),
    },
  );
}

async function observe(source: ObservationSource): Promise<Observation> {
  const result = await source.observe(Date.now() / 1000, AbortSignal.timeout(10_000));
  if (!result.ok) throw result.error;
  return result.observation;
}

/** Direct scrape needs history: ticks 1 s apart over a few seconds, like the controller's loop. */
async function scrapeTicks(source: ObservationSource, ticks: number): Promise<Observation> {
  let last: Observation | undefined;
  for (let i = 0; i < ticks; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 1000));
    last = await observe(source);
  }
  return last as Observation;
}

async function eventually<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    value = await read();
  }
  return value;
}

function expectSameObservation(a: Observation, b: Observation): void {
  // Gauges and info labels are the same samples, read two ways: exactly equal.
  for (const key of [
    'podsReporting',
    'runningRequests',
    'waitingRequests',
    'engineKvCapacityTokensPerReplica',
  ] as const) {
    expect(a[key], key).toBe(b[key]);
  }
  expect(a.engineKvUsageRatio).toBeCloseTo(b.engineKvUsageRatio as number, 12);
  // Rates: Prometheus extrapolates to the window edges and timestamps at scrape start, the direct
  // path divides by the time between its own ticks; for counters that grow steadily they agree.
  for (const key of ['promptTokensPerSecond', 'generationTokensPerSecond', 'preemptionsPerSecond'] as const) {
    expect(a[key], key).toBeDefined();
    expect(Math.abs((a[key] as number) / (b[key] as number) - 1), key).toBeLessThan(0.03);
  }
  // Percentiles depend on ratios between buckets of the same scrape: equal up to rounding.
  for (const key of ['requestInputTokens', 'requestOutputTokens'] as const) {
    for (const q of ['p50', 'p95', 'p99'] as const) {
      expect(a[key]?.[q], `${key}.${q}`).toBeCloseTo(b[key]?.[q] as number, 3);
    }
  }
  expect(Math.abs((a.waitingTokens as number) / (b.waitingTokens as number) - 1)).toBeLessThan(0.03);
  expect(Math.abs((a.inflightTokens as number) / (b.inflightTokens as number) - 1)).toBeLessThan(0.03);
  expect(a.provenance).toEqual(b.provenance);
}

beforeAll(async () => {
  pods.push(await startPod(engineState({ modelName: 'llama-8b' })));
  pods.push(
    await startPod(
      engineState({
        modelName: 'llama-8b',
        runningRequests: 10,
        waitingRequests: 0,
        kvUsage: 0.4,
        engines: 2,
        requestsPerSecond: 2,
      }),
    ),
  );
  pods.push(
    await startPod(
      engineState({
        modelName: 'llama-8b',
        runningRequests: 3,
        waitingRequests: 1,
        kvUsage: 0.2,
        numGpuBlocks: 20_000,
      }),
      true,
    ),
  );
  prometheus = await startPrometheus({
    targets: pods.map((p) => p.address),
    scrapeIntervalSeconds: 1,
    labels: { namespace: 'inference', app: 'vllm' },
  });
  await prometheus.waitForTargets(3);
  // rate() over a window longer than a series' life under-reports: Prometheus extrapolates only half
  // a scrape interval before the first sample but still divides by the whole window. Let the series
  // grow older than the window first.
  await new Promise((resolve) => setTimeout(resolve, (RATE_WINDOW_SECONDS + 2) * 1000));
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  for (const pod of pods) {
    pod.server.closeAllConnections();
    pod.server.close();
  }
});

describe('PromQL path and direct-scrape path against a real Prometheus', () => {
  it('agree with each other and with the traffic model', async () => {
    const viaScrape = await scrapeTicks(scrapeSource(), 4);
    const viaPromQl = await observe(promSource());
    expectSameObservation(viaPromQl, viaScrape);

    const truth = expectedRates(pods.map((p) => p.state));
    expect(viaPromQl.podsReporting).toBe(3);
    expect(viaPromQl.runningRequests).toBe(24 + 10 + 3);
    expect(viaPromQl.waitingRequests).toBe(7 + 0 + 1);
    // Mean over pods of (0.8125, 0.4, 0.2); pod 3 reports the pre-0.9.2 name gpu_cache_usage_perc.
    expect(viaPromQl.engineKvUsageRatio).toBeCloseTo((0.8125 + 0.4 + 0.2) / 3, 12);
    // Smallest replica: pod 3 with 20,000 blocks x 16 tokens.
    expect(viaPromQl.engineKvCapacityTokensPerReplica).toBe(320_000);
    expect(
      Math.abs((viaPromQl.promptTokensPerSecond as number) / truth.promptTokensPerSecond - 1),
    ).toBeLessThan(0.03);
    expect(
      Math.abs((viaPromQl.generationTokensPerSecond as number) / truth.generationTokensPerSecond - 1),
    ).toBeLessThan(0.03);
    // Every pod serves the same prompt distribution: P50 1000, P95 5000 (engine-payloads.ts).
    expect(viaPromQl.requestInputTokens?.p50).toBeCloseTo(1000, 3);
    expect(viaPromQl.requestInputTokens?.p95).toBeCloseTo(5000, 3);
  }, 30_000);

  it('tokenscaler observe --prometheus reads the same fleet', async () => {
    const r = await runCli([
      'observe',
      '--engine',
      'vllm',
      '--prometheus',
      prometheus.url,
      '--selector',
      '{namespace="inference",app="vllm"}',
      '--rate-window',
      String(RATE_WINDOW_SECONDS),
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({
      source: 'prometheus',
      pods: 3,
      runningRequests: 37,
      waitingRequests: 8,
      engineCapacityTokens: 320_000,
      provenance: { runningRequests: 'measured', inflightTokens: 'estimated' },
    });
    expect(json.inputTokensP50).toBeCloseTo(1000, 3);
    expect(json.endpoints.map((e: { pod: string }) => e.pod).sort()).toEqual(
      pods.map((p) => p.address).sort(),
    );
  }, 30_000);

  it('computes percentiles exactly as Prometheus histogram_quantile does', async () => {
    const selector = '{namespace="inference",app="vllm"}';
    for (const metric of ['vllm:request_prompt_tokens', 'vllm:request_generation_tokens']) {
      const buckets = await prometheus.query(
        `sum by (le) (rate(${metric}_bucket${selector}[${RATE_WINDOW_SECONDS}s]))`,
      );
      const ours = buckets.map((b) => ({
        upperBound: b.metric.le === '+Inf' ? Infinity : Number(b.metric.le),
        count: Number(b.value[1]),
      }));
      for (const q of [0.5, 0.9, 0.95, 0.99]) {
        const [theirs] = await prometheus.query(
          `histogram_quantile(${q}, sum by (le) (rate(${metric}_bucket${selector}[${RATE_WINDOW_SECONDS}s])))`,
        );
        expect(bucketQuantile(q, ours), `${metric} q=${q}`).toBeCloseTo(Number(theirs?.value[1]), 6);
      }
    }
  }, 30_000);

  it('follow a changing gauge', async () => {
    (pods[0] as FakePod).state = { ...(pods[0] as FakePod).state, runningRequests: 40, waitingRequests: 12 };
    const viaPromQl = await eventually(
      () => observe(promSource()),
      (o) => o.runningRequests === 40 + 10 + 3,
    );
    const viaScrape = await scrapeTicks(scrapeSource(), 3);
    expect(viaPromQl.runningRequests).toBe(53);
    expectSameObservation(viaPromQl, viaScrape);
  }, 30_000);

  it('drop a pod that died: no last value left behind on either path', async () => {
    const dead = pods[2] as FakePod;
    dead.server.closeAllConnections();
    await new Promise<void>((resolve) => dead.server.close(() => resolve()));
    // Prometheus' failed scrape writes staleness markers: the pod's gauges vanish at once.
    const viaPromQl = await eventually(
      () => observe(promSource()),
      (o) => o.podsReporting === 2,
    );
    expect(viaPromQl.runningRequests).toBe(40 + 10);
    expect(viaPromQl.engineKvUsageRatio).toBeCloseTo((0.8125 + 0.4) / 2, 12);
    // The dead pod was the smallest; capacity is now pod 1's 538,816 tokens.
    expect(viaPromQl.engineKvCapacityTokensPerReplica).toBe(538_816);

    const source = scrapeSource();
    const result = await source.observe(Date.now() / 1000, AbortSignal.timeout(10_000));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.observation.podsReporting).toBe(2);
    expect(result.observation.runningRequests).toBe(50);
    expect(result.pods.find((p) => !p.ok)?.error?.code).toBe('SCRAPE_FAILED');
  }, 30_000);
});
