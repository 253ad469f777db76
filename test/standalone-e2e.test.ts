import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { computeCapacity, replicaCapacityInput } from '../src/capacity/kv-model.ts';
import { requireModelPreset } from '../src/capacity/presets.ts';
import { main } from '../src/main.ts';

/**
 * Standalone end to end: fake vLLM engines on loopback -> `tokenscaler controller --standalone` (the
 * real command, in-process) -> the external metric it serves equals the replicas that the capacity
 * model and the demand call for.
 */

interface FakeEngine {
  url: string;
  server: Server;
  set(text: string): void;
}

async function fakeEngine(): Promise<FakeEngine> {
  let body = '';
  const server = createServer((request, response) => {
    if (request.url !== '/metrics') {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/metrics`, server, set: (text) => (body = text) };
}

/** vLLM v1 metrics of one engine: running/waiting requests, KV usage and its cache config. */
function vllmMetrics(o: { running: number; waiting: number; kvUsage: number; numGpuBlocks: number }): string {
  const l = 'engine="0",model_name="meta-llama/Llama-3.1-8B"';
  return [
    '# HELP vllm:num_requests_running Number of requests in model execution batches.',
    '# TYPE vllm:num_requests_running gauge',
    `vllm:num_requests_running{${l}} ${o.running}`,
    '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.',
    '# TYPE vllm:num_requests_waiting gauge',
    `vllm:num_requests_waiting{${l}} ${o.waiting}`,
    '# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.',
    '# TYPE vllm:kv_cache_usage_perc gauge',
    `vllm:kv_cache_usage_perc{${l}} ${o.kvUsage}`,
    '# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig',
    '# TYPE vllm:cache_config_info gauge',
    `vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="0",gpu_memory_utilization="0.9",num_gpu_blocks="${o.numGpuBlocks}"} 1.0`,
    '',
  ].join('\n');
}

const running: { stop: () => void; done: Promise<number>; engines: FakeEngine[] }[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    r.stop();
    await r.done;
    for (const e of r.engines) {
      e.server.closeAllConnections();
      await new Promise((resolve) => e.server.close(resolve));
    }
  }
});

async function startController(scalerYaml: string, engines: FakeEngine[]) {
  const dir = await mkdtemp(join(tmpdir(), 'standalone-'));
  await writeFile(join(dir, 'scaler.yaml'), scalerYaml);
  const controller = new AbortController();
  let stderr = '';
  let apiUrl: string | undefined;
  const done = main(
    [
      'controller',
      '--standalone',
      '--scalers',
      dir,
      '--insecure-serving',
      '--secure-port',
      '0',
      '--metrics-bind-address',
      '127.0.0.1:0',
      '--tick-seconds',
      '1',
    ],
    {
      stdout: () => {},
      stderr: (text) => {
        stderr += text;
        const started = /"msg":"controller started".*?"api":"([^"]+)"/.exec(text);
        if (started) apiUrl = started[1];
      },
      env: {},
      cwd: dir,
      signal: controller.signal,
      nowMs: () => Date.now(),
    },
  );
  running.push({ stop: () => controller.abort(), done, engines });
  for (let i = 0; i < 100 && apiUrl === undefined; i++) await new Promise((r) => setTimeout(r, 50));
  if (apiUrl === undefined) throw new Error(`controller did not start:\n${stderr}`);
  return { apiUrl, stderr: () => stderr };
}

async function servedReplicas(
  apiUrl: string,
  name: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const selector = encodeURIComponent(`tokenscaler.dev/name=${name}`);
  const response = await fetch(
    `${apiUrl}/apis/external.metrics.k8s.io/v1beta1/namespaces/inference/tokenscaler_desired_replicas?labelSelector=${selector}`,
  );
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const scalerYaml = (urls: string[]) => `apiVersion: tokenscaler.dev/v1alpha1
kind: TokenScaler
metadata: {name: llama-8b, namespace: inference}
spec:
  scaleTargetRef: {name: vllm-llama-8b}
  minReplicas: 1
  maxReplicas: 20
  model: {preset: llama-3.1-8b}
  accelerator: {preset: h100-80gb}
  engine: {kind: vllm}
  metrics:
    scrape: {urls: [${urls.map((u) => `"${u}"`).join(', ')}]}
  target: {kvCacheUtilization: 0.8}
`;

describe('standalone controller end to end', () => {
  it('serves the replicas the KV demand needs, from the engine-reported capacity', async () => {
    const engines = [await fakeEngine(), await fakeEngine()];
    // Each engine: 27,898 blocks x 16 = 446,368 tokens (kv-cache-model.md 5.1), 90% used.
    for (const e of engines)
      e.set(vllmMetrics({ running: 12, waiting: 0, kvUsage: 0.9, numGpuBlocks: 27_898 }));
    const { apiUrl } = await startController(scalerYaml(engines.map((e) => e.url)), engines);

    let served = await servedReplicas(apiUrl, 'llama-8b');
    for (let i = 0; i < 60 && served.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      served = await servedReplicas(apiUrl, 'llama-8b');
    }
    expect(served.status).toBe(200);
    // In flight = 2 x 0.9 x 446,368 = 803,462 tokens; / (446,368 x 0.8) = 2.25 -> 3 replicas.
    const items = served.body['items'] as { value: string; metricLabels: Record<string, string> }[];
    expect(items).toHaveLength(1);
    expect(items[0]?.value).toBe('3');
    expect(items[0]?.metricLabels['tokenscaler.dev/name']).toBe('llama-8b');
  });

  it('uses the capacity model when engines do not report their cache size, and holds when they go away', async () => {
    // No cache_config_info: capacity comes from the model. In-flight tokens are estimated from running
    // requests x mean tokens per request (histogram rates, so they need two scrapes).
    let scrapes = 0;
    const engine = await fakeEngine();
    const l = 'engine="0",model_name="meta-llama/Llama-3.1-8B"';
    const histogram = (name: string, tokensEach: number, count: number) =>
      [
        `# TYPE ${name} histogram`,
        `${name}_bucket{${l},le="100"} 0`,
        `${name}_bucket{${l},le="5000"} ${count}`,
        `${name}_bucket{${l},le="+Inf"} ${count}`,
        `${name}_sum{${l}} ${count * tokensEach}`,
        `${name}_count{${l}} ${count}`,
      ].join('\n');
    const body = () => {
      scrapes += 1;
      const finished = scrapes * 10;
      return [
        vllmMetrics({ running: 400, waiting: 0, kvUsage: 0.5, numGpuBlocks: 1 })
          .replace(/.*cache_config_info.*\n/g, '')
          .replace(/.*kv_cache_usage_perc.*\n/g, ''),
        histogram('vllm:request_prompt_tokens', 2_000, finished),
        histogram('vllm:request_generation_tokens', 500, finished),
        '',
      ].join('\n');
    };
    engine.server.removeAllListeners('request');
    engine.server.on('request', (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body());
    });
    const { apiUrl } = await startController(scalerYaml([engine.url]), [engine]);
    const model = computeCapacity(replicaCapacityInput(requireModelPreset('llama-3.1-8b'), 79.2));
    // 400 running x (2,000 + 500) = 1,000,000 tokens / (model tokens x 0.8) -> 3 replicas.
    const expected = Math.ceil(1_000_000 / (model.tokensPerReplica * 0.8));
    expect(expected).toBe(3);
    let value: string | undefined;
    for (let i = 0; i < 80 && value !== String(expected); i++) {
      await new Promise((r) => setTimeout(r, 100));
      const served = await servedReplicas(apiUrl, 'llama-8b');
      value = (served.body['items'] as { value: string }[] | undefined)?.[0]?.value;
    }
    expect(value).toBe(String(expected));

    // The engine disappears: missing data is not zero demand; the decision holds.
    await new Promise((resolve) => engine.server.close(resolve));
    engine.server.closeAllConnections();
    await new Promise((r) => setTimeout(r, 2_500));
    const held = await servedReplicas(apiUrl, 'llama-8b');
    expect((held.body['items'] as { value: string }[])[0]?.value).toBe(String(expected));
  });

  it('answers 404 for an unknown scaler', async () => {
    const engine = await fakeEngine();
    engine.set(vllmMetrics({ running: 1, waiting: 0, kvUsage: 0.1, numGpuBlocks: 1000 }));
    const { apiUrl } = await startController(scalerYaml([engine.url]), [engine]);
    const served = await servedReplicas(apiUrl, 'nope');
    expect([404, 503]).toContain(served.status);
  });
});
