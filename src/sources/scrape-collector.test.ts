import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineState, vllmMetrics } from '../../test/support/engine-payloads.ts';
import type { EngineKind } from '../config/tokenscaler-spec.ts';
import { createObservationSource, type ObservationResult } from './observation-source.ts';

/** Loopback endpoints with hostile behaviours, served by one real HTTP server. */
const GOOD = vllmMetrics(engineState(), 0);
let server: Server;
let base: string;
let closedPort: number;

const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  '/good': (_req, res) => res.end(GOOD),
  '/good2': (_req, res) => res.end(vllmMetrics(engineState({ runningRequests: 6 }), 0)),
  '/truncated': (_req, res) => res.end(GOOD.slice(0, 1500)),
  '/duplicate': (_req, res) =>
    res.end(`${GOOD}vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3\n`),
  '/wrong-type': (_req, res) =>
    res.end(
      '# TYPE vllm:num_requests_running counter\nvllm:num_requests_running 3\nvllm:num_requests_waiting 2\n',
    ),
  '/not-vllm': (_req, res) => res.end('# TYPE node_load1 gauge\nnode_load1 0.5\n'),
  '/empty': (_req, res) => res.end(''),
  '/huge-label': (_req, res) => res.end(`vllm:num_requests_running{model_name="${'x'.repeat(200_000)}"} 1\n`),
  '/fifty-mb-declared': (_req, res) => {
    res.setHeader('content-length', String(50 * 1024 * 1024));
    res.write('# a\n');
    // Never sends the rest: the declared length alone must be enough to refuse.
  },
  '/fifty-mb-chunked': (_req, res) => {
    const chunk = `# padding ${'y'.repeat(64 * 1024)}\n`;
    let sent = 0;
    const pump = () => {
      while (sent < 50 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    res.on('error', () => undefined);
    pump();
  },
  '/slow': (_req, res) => {
    const timer = setTimeout(() => res.end(GOOD), 5000);
    res.on('close', () => clearTimeout(timer));
  },
  '/status-500': (_req, res) => {
    res.statusCode = 500;
    res.end('engine is warming up');
  },
  '/latin1': (_req, res) =>
    res.end(Buffer.from([0x6d, 0x7b, 0x61, 0x3d, 0x22, 0xe9, 0x22, 0x7d, 0x20, 0x31, 0x0a])),
  '/openmetrics': (_req, res) => {
    res.setHeader('content-type', 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    res.end('# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 5\n# EOF\n');
  },
  '/openmetrics-no-eof': (_req, res) => {
    res.setHeader('content-type', 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    res.end('# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 5\n');
  },
  '/old-timestamps': (_req, res) =>
    res.end('vllm:num_requests_running 5 1000\nvllm:num_requests_waiting 2\n'),
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const handler = routes[req.url ?? ''];
    if (handler === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function sourceFor(paths: string[], opts: { kind?: EngineKind; timeoutSeconds?: number } = {}) {
  return createObservationSource(
    {
      engine: { kind: opts.kind ?? 'vllm' },
      metrics: {
        scrape: {
          urls: paths.map((p) => (p.startsWith('http') ? p : `${base}${p}`)),
          path: '/metrics',
          scheme: 'http',
          timeoutSeconds: opts.timeoutSeconds ?? 2,
        },
      },
    },
    {
      fetch: (url, init) => fetch(url, init),
      clockMs: () => Date.now(),
      limits: { maxBytes: 8 * 1024 * 1024 },
    },
  );
}

async function observe(
  paths: string[],
  opts?: { kind?: EngineKind; timeoutSeconds?: number },
): Promise<ObservationResult> {
  return sourceFor(paths, opts).observe(Date.now() / 1000, new AbortController().signal);
}

describe('direct scrape of hostile endpoints: one clear error each, the process stays up', () => {
  it.each([
    [
      '/truncated',
      'EXPOSITION_MALFORMED',
      /truncated: line \d+: last line does not end with a newline \(payload truncated\?\)/,
    ],
    ['/duplicate', 'EXPOSITION_MALFORMED', /duplicate series vllm:num_requests_running\{engine="0"/],
    ['/not-vllm', 'ENGINE_METRICS_MISSING', /none of the vLLM metrics .* \(it serves node_load1\)/],
    ['/empty', 'ENGINE_METRICS_MISSING', /the payload is empty/],
    ['/huge-label', 'EXPOSITION_LIMIT', /value of label "model_name" is 200000 characters long/],
    ['/fifty-mb-declared', 'EXPOSITION_LIMIT', /declares 52428800 bytes; the limit is 8388608 bytes/],
    ['/fifty-mb-chunked', 'EXPOSITION_LIMIT', /sent more than 8388608 bytes/],
    ['/status-500', 'SCRAPE_FAILED', /HTTP 500: engine is warming up/],
    ['/latin1', 'EXPOSITION_MALFORMED', /not valid UTF-8/],
    ['/openmetrics-no-eof', 'EXPOSITION_MALFORMED', /without "# EOF"/],
  ])('%s -> %s', async (path, code, message) => {
    const result = await observe([path]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe(code);
    expect(result.error.message).toMatch(message);
    expect(result.error.message).toContain(`${base}${path}`);
    expect(result.error.message).not.toContain('\n');
  });

  it('ignores a series of the wrong type on a pod, with a warning, and keeps its other readings', async () => {
    const result = await observe(['/wrong-type']);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.observation.runningRequests).toBeUndefined();
    expect(result.observation.waitingRequests).toBe(2);
    expect(result.warnings).toEqual([
      `${base}/wrong-type: vllm:num_requests_running is a counter (family vllm:num_requests_running); the vLLM profile reads it as a gauge, so it is ignored`,
    ]);
    expect(result.pods[0]?.problems?.[0]?.code).toBe('METRIC_TYPE_MISMATCH');
  });

  it('times out a slow endpoint at its deadline', async () => {
    const started = Date.now();
    const result = await observe(['/slow'], { timeoutSeconds: 0.3 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result.ok || result.error.code).toBe('SCRAPE_TIMEOUT');
    if (!result.ok) expect(result.error.message).toMatch(/no answer within 0.3 s/);
  });

  it('reports an unreachable endpoint with the network reason', async () => {
    const result = await observe([`http://127.0.0.1:${closedPort}/metrics`]);
    expect(result.ok || result.error.code).toBe('SCRAPE_FAILED');
    if (!result.ok) expect(result.error.message).toMatch(/ECONNREFUSED/);
  });

  it('keeps the healthy pods and lists the failed ones when only some fail', async () => {
    const result = await observe(['/good', '/slow', '/truncated', '/good2'], { timeoutSeconds: 0.3 });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.observation.podsReporting).toBe(2);
    expect(result.observation.runningRequests).toBe(30);
    expect(result.pods.map((p) => [p.pod.replace(base, ''), p.ok, p.error?.code])).toEqual([
      ['/good', true, undefined],
      ['/slow', false, 'SCRAPE_TIMEOUT'],
      ['/truncated', false, 'EXPOSITION_MALFORMED'],
      ['/good2', true, undefined],
    ]);
    expect(result.warnings).toHaveLength(2);
  });

  it('summarises when every endpoint fails', async () => {
    const result = await observe(['/status-500', '/not-vllm', '/empty', '/latin1']);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('NO_PODS_REPORTING');
    expect(result.error.message).toMatch(/^no endpoint reported vLLM metrics \(4 failed\): .*; and 1 more$/);
    expect(result.error.cause).toBeInstanceOf(AggregateError);
  });

  it('reads OpenMetrics when the endpoint negotiates it', async () => {
    const result = await observe(['/openmetrics']);
    expect(result.ok && result.observation.runningRequests).toBe(5);
  });

  it('drops samples whose explicit timestamp is stale', async () => {
    const result = await observe(['/old-timestamps']);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.observation.runningRequests).toBeUndefined();
    expect(result.observation.waitingRequests).toBe(2);
  });

  it('returns ABORTED when the caller aborts (shutdown)', async () => {
    const controller = new AbortController();
    const pending = sourceFor(['/slow'], { timeoutSeconds: 5 }).observe(0, controller.signal);
    setTimeout(() => controller.abort(), 50);
    const result = await pending;
    expect(result.ok || result.error.code).toBe('ABORTED');
  });
});

describe('fleet bookkeeping across ticks', () => {
  it('forgets a pod that left the endpoint list, and its counter history', async () => {
    let endpoints = ['http://a/metrics', 'http://b/metrics'];
    let t = 0;
    const state = engineState();
    const source = createObservationSource(
      {
        engine: { kind: 'vllm' },
        metrics: { scrape: { urls: ['http://unused'], path: '/metrics', scheme: 'http', timeoutSeconds: 1 } },
      },
      {
        fetch: async () => new Response(vllmMetrics(state, t)),
        clockMs: () => 0,
        resolveEndpoints: async () => endpoints,
      },
    );
    const signal = new AbortController().signal;
    await source.observe(0, signal);
    t = 10;
    const both = await source.observe(10, signal);
    expect(both.ok && both.observation.runningRequests).toBe(48);
    expect(both.ok && both.observation.promptTokensPerSecond).toBeCloseTo(2 * 4 * 1617.5, 6);
    endpoints = ['http://a/metrics'];
    t = 20;
    const one = await source.observe(20, signal);
    expect(one.ok && one.observation.podsReporting).toBe(1);
    expect(one.ok && one.observation.runningRequests).toBe(24);
    expect(one.ok && one.observation.promptTokensPerSecond).toBeCloseTo(4 * 1617.5, 6);
    // b comes back: it starts without history, so it adds no rate until its second tick.
    endpoints = ['http://a/metrics', 'http://b/metrics'];
    t = 30;
    const back = await source.observe(30, signal);
    expect(back.ok && back.observation.runningRequests).toBe(48);
    expect(back.ok && back.observation.promptTokensPerSecond).toBeCloseTo(4 * 1617.5, 6);
  });

  it('handles a counter reset (pod restarted) without a negative rate', async () => {
    let text = '';
    const source = createObservationSource(
      {
        engine: { kind: 'vllm' },
        metrics: {
          scrape: { urls: ['http://a/metrics'], path: '/metrics', scheme: 'http', timeoutSeconds: 1 },
        },
      },
      { fetch: async () => new Response(text), clockMs: () => 0, scrapeRateWindowSeconds: 60 },
    );
    const signal = new AbortController().signal;
    const tick = async (t: number, prompt: number) => {
      text = `vllm:num_requests_running 1\nvllm:prompt_tokens_total ${prompt}\n`;
      return source.observe(t, signal);
    };
    await tick(0, 5000);
    await tick(15, 5600);
    const reset = await tick(30, 300); // restarted: 600 + 300 tokens over 30 s
    expect(reset.ok && reset.observation.promptTokensPerSecond).toBeCloseTo(900 / 30, 12);
  });

  it('says why no endpoints could be resolved', async () => {
    const source = createObservationSource(
      {
        engine: { kind: 'vllm' },
        metrics: {
          scrape: {
            podSelector: { matchLabels: { app: 'vllm' } },
            port: 8000,
            path: '/metrics',
            scheme: 'http',
            timeoutSeconds: 1,
          },
        },
      },
      { fetch: async () => new Response(''), clockMs: () => 0 },
    );
    const result = await source.observe(0, new AbortController().signal);
    expect(result.ok || result.error.code).toBe('ENDPOINTS_UNRESOLVED');
  });

  it('rejects generic with direct scrape at creation', () => {
    expect(() =>
      createObservationSource(
        {
          engine: { kind: 'generic' },
          metrics: { scrape: { urls: ['http://a'], path: '/metrics', scheme: 'http', timeoutSeconds: 1 } },
        },
        { fetch: async () => new Response(''), clockMs: () => 0 },
      ),
    ).toThrow(/engine.kind: "generic" reads user-supplied PromQL and needs metrics.prometheus/);
  });
});
