import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineState, vllmMetrics } from '../../test/support/engine-payloads.ts';
import { runCli } from '../../test/support/run-cli.ts';

/** Two fake vLLM pods whose counters advance with wall time, and a fake Prometheus that answers nothing. */
let server: Server;
let base: string;
const started = Date.now();
const state = engineState();

beforeAll(async () => {
  server = createServer((req, res) => {
    const t = (Date.now() - started) / 1000;
    if (req.url === '/pod-a/metrics' || req.url === '/pod-b/metrics') {
      res.setHeader('content-type', 'text/plain; version=0.0.4');
      res.end(vllmMetrics(state, t));
    } else if (req.url === '/api/v1/query') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }));
    } else if (req.url === '/bad/metrics') {
      res.end('vllm:num_requests_running{model="x" 1\n');
    } else {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('tokenscaler observe', () => {
  it('prints the JSON contract with provenance, null for what was not measured', async () => {
    const r = await runCli([
      'observe',
      '--engine',
      'vllm',
      '--scrape',
      `${base}/pod-a/metrics`,
      `${base}/pod-b/metrics`,
      '--interval',
      '0.3',
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    for (const field of [
      'inflightTokens',
      'waitingTokens',
      'runningRequests',
      'waitingRequests',
      'inputTokensP95',
      'outputTokensP95',
      'requestTokensP95',
      'promptTokensPerSecond',
      'generationTokensPerSecond',
      'kvCacheUsage',
      'engineCapacityTokens',
      'pods',
      'provenance',
    ]) {
      expect(json).toHaveProperty(field);
    }
    expect(json).toMatchObject({
      engine: 'vllm',
      source: 'scrape',
      pods: 2,
      runningRequests: 48,
      waitingRequests: 14,
      kvCacheUsage: 0.8125,
      engineCapacityTokens: 538_816,
      provenance: { runningRequests: 'measured', inflightTokens: 'estimated', waitingTokens: 'estimated' },
    });
    // Two pods at 4 requests/s x 1617.5 prompt tokens; wall-clock timing makes it approximate.
    expect(json.promptTokensPerSecond).toBeGreaterThan(2 * 4 * 1617.5 * 0.8);
    expect(json.promptTokensPerSecond).toBeLessThan(2 * 4 * 1617.5 * 1.2);
    expect(json.requestTokensP95).toBeCloseTo(json.inputTokensP95 + json.outputTokensP95, 9);
    expect(json.provenance.requestTokensP95).toBe('measured');
    expect(json.endpoints).toEqual([
      { pod: `${base}/pod-a/metrics`, ok: true },
      { pod: `${base}/pod-b/metrics`, ok: true },
    ]);
  });

  it('prints a table, with "not measured" for missing figures', async () => {
    const r = await runCli(['observe', '--engine=vllm', `--scrape=${base}/pod-a/metrics`, '--interval', '0']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^vLLM via direct scrape of 1 endpoint, one scrape \(no rates\)\n/);
    expect(r.stdout).toMatch(/running requests +24 +measured/);
    expect(r.stdout).toMatch(/KV-cache usage +81\.3% +measured/);
    expect(r.stdout).toMatch(/KV capacity per replica \(tokens\) +538,816 +measured/);
    expect(r.stdout).toMatch(/prompt tokens\/s +- +not measured/);
  });

  it.each([
    [
      ['observe', '--scrape', 'http://x/metrics'],
      2,
      /^tokenscaler observe: --engine: is required; allowed: vllm, sglang/,
    ],
    [
      ['observe', '--engine', 'ollama', '--scrape', 'http://x/metrics'],
      2,
      /--engine: unknown engine kind "ollama"; allowed: vllm, sglang, tgi, trtllm, tokenscaler-gateway, generic/,
    ],
    [['observe', '--engine', 'vllm'], 2, /--scrape: give either --scrape URL\.\.\. or --prometheus URL/],
    [
      ['observe', '--engine', 'vllm', '--scrape', 'ftp://x'],
      2,
      /--scrape: "ftp:\/\/x" is not allowed; expected an http:\/\/ or https:\/\/ URL/,
    ],
    [
      ['observe', '--engine', 'vllm', '--prometheus', 'http://p:9090', '--selector', 'app=vllm'],
      2,
      /--selector: a PromQL label selector in braces/,
    ],
    [
      ['observe', '--engine', 'generic', '--scrape', 'http://x/metrics'],
      2,
      /--engine: generic works through PromQL only/,
    ],
    [
      ['observe', '--engine', 'generic', '--prometheus', 'http://p:9090', '--query', 'tokens=sum(x)'],
      2,
      /--query: "tokens" is not a signal/,
    ],
    [
      ['observe', '--engine', 'vllm', '--scrape', 'http://x', '--timeout', '0'],
      2,
      /--timeout: "0" is not allowed/,
    ],
  ])('rejects bad input %j with one line', async (argv, code, message) => {
    const r = await runCli(argv);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('fails with one line for an unreachable endpoint', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closed = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/metrics`;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const r = await runCli([
      'observe',
      '--engine',
      'vllm',
      '--scrape',
      closed,
      '--interval',
      '0',
      '--timeout',
      '2',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr.startsWith(`tokenscaler observe: ${closed}: ECONNREFUSED`)).toBe(true);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('fails with one line for a malformed payload, naming the line', async () => {
    const r = await runCli([
      'observe',
      '--engine',
      'vllm',
      '--scrape',
      `${base}/bad/metrics`,
      '--interval',
      '0',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `tokenscaler observe: ${base}/bad/metrics: line 1: expected "," or "}" after the value of label "model"\n`,
    );
  });

  it('fails with one line when Prometheus has no series for the engine', async () => {
    const r = await runCli([
      'observe',
      '--engine',
      'sglang',
      '--prometheus',
      base,
      '--selector',
      '{app="x"}',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^tokenscaler observe: no series of sglang:num_running_reqs, .* matched \{app="x"\}/,
    );
  });

  it('warns about failed pods but reports the healthy ones', async () => {
    const r = await runCli([
      'observe',
      '--engine',
      'vllm',
      '--scrape',
      `${base}/pod-a/metrics,${base}/missing/metrics`,
      '--interval',
      '0',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`tokenscaler observe: warning: ${base}/missing/metrics: HTTP 404: not found\n`);
    expect(JSON.parse(r.stdout).pods).toBe(1);
  });
});
