/**
 * `tokenscaler controller` in cluster mode, the real command in-process: TokenScalers from the fake
 * API server (real client-node), pod discovery for metrics.scrape.podSelector to a fake vLLM engine
 * on loopback, status and the owned HPA written, the external metric served, and on shutdown the
 * Lease released while the owned HPA stays.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenScalerStatus } from '../src/kube/scaler-status.ts';
import { main } from '../src/main.ts';
import { type FakeApiServer, startFakeApiServer } from './support/fake-apiserver.ts';
import {
  crdStore,
  DEPLOYMENTS,
  HPAS,
  LEASES,
  PODS,
  TKS,
  tokenScaler,
} from './support/fake-apiserver-fixtures.ts';

const NS = 'inference';

function vllmMetrics(kvUsage: number): string {
  const l = 'engine="0",model_name="meta-llama/Llama-3.1-8B"';
  return [
    '# TYPE vllm:num_requests_running gauge',
    `vllm:num_requests_running{${l}} 12`,
    '# TYPE vllm:num_requests_waiting gauge',
    `vllm:num_requests_waiting{${l}} 0`,
    '# TYPE vllm:kv_cache_usage_perc gauge',
    `vllm:kv_cache_usage_perc{${l}} ${kvUsage}`,
    '# TYPE vllm:cache_config_info gauge',
    'vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="0",gpu_memory_utilization="0.9",num_gpu_blocks="27898"} 1.0',
    '',
  ].join('\n');
}

describe('tokenscaler controller in cluster mode', () => {
  let server: FakeApiServer;
  const engines: Server[] = [];
  let dir: string;
  const stop = new AbortController();
  let exit: Promise<number>;
  let stderr = '';

  beforeAll(async () => {
    // Two engines on one port, as two pods would be: 127.0.0.1 and 127.0.0.2 (both loopback).
    const serve = () =>
      createServer((req, res) => {
        if (req.url !== '/metrics') return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(vllmMetrics(0.9));
      });
    const [first, second] = [serve(), serve()];
    engines.push(first, second);
    await new Promise<void>((r) => first.listen(0, '127.0.0.1', () => r()));
    const { port } = first.address() as AddressInfo;
    await new Promise<void>((r) => second.listen(port, '127.0.0.2', () => r()));

    server = await startFakeApiServer({ store: crdStore() });
    server.store.create(DEPLOYMENTS, NS, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'vllm' },
      spec: { replicas: 2, selector: { matchLabels: { app: 'vllm' } } },
      status: { replicas: 2 },
    });
    // Two ready pods on the engines' addresses, and one still starting (not scraped).
    for (const [name, ip, ready] of [
      ['vllm-a', '127.0.0.1', true],
      ['vllm-b', '127.0.0.2', true],
      ['vllm-c', '127.0.0.3', false],
    ] as const) {
      server.store.create(PODS, NS, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels: { app: 'vllm' } },
        status: {
          phase: 'Running',
          podIP: ip,
          conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
        },
      });
    }
    server.store.create(
      TKS,
      NS,
      tokenScaler(NS, 'llama', {
        metrics: { scrape: { podSelector: { matchLabels: { app: 'vllm' } }, port } },
        hpa: { create: true },
      }),
    );
    dir = await mkdtemp(join(tmpdir(), 'tks-cluster-'));
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, server.kubeconfig(NS));
    exit = main(
      [
        'controller',
        '--kubeconfig',
        kubeconfig,
        '--namespace',
        NS,
        '--leader-elect',
        '--leader-elect-lease-duration',
        '3s',
        '--leader-elect-renew-deadline',
        '2s',
        '--leader-elect-retry-period',
        '500ms',
        '--insecure-serving',
        '--bind-address',
        '127.0.0.1',
        '--secure-port',
        '0',
        '--metrics-bind-address',
        '0',
        '--tick-seconds',
        '1',
      ],
      {
        stdout: () => undefined,
        stderr: (text) => {
          stderr += text;
        },
        env: { POD_NAME: 'tokenscaler-0', POD_NAMESPACE: NS },
        cwd: dir,
        signal: stop.signal,
        nowMs: Date.now,
      },
    );
  });

  afterAll(async () => {
    stop.abort();
    await exit.catch(() => 1);
    for (const engine of engines) {
      engine.closeAllConnections();
      await new Promise((r) => engine.close(r));
    }
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const until = async <T>(
    what: string,
    check: () => T | undefined | false,
    timeoutMs = 15_000,
  ): Promise<T> => {
    const started = Date.now();
    for (;;) {
      const value = check();
      if (value !== undefined && value !== false) return value;
      if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('reconciles from the API, scrapes the ready pods, writes status, owns the HPA and serves the metric', async () => {
    const status = await until('status from engine metrics', () => {
      const s = server.store.get(TKS, NS, 'llama').status as TokenScalerStatus | undefined;
      return s?.capacitySource === 'engine' && s.desiredReplicas !== undefined ? s : undefined;
    });
    // 27,898 blocks x 16 = 446,368 tokens per replica; 2 ready pods at 90% KV = 803,462 tokens in flight;
    // 803,462 / (446,368 x 0.8) = 2.25 -> 3 replicas.
    expect(status).toMatchObject({
      engineTokensPerReplica: 446_368,
      tokensPerReplica: 446_368,
      currentReplicas: 2,
      readyReplicas: 2,
      desiredReplicas: 3,
    });
    expect(status.capacityDrift).toMatch(/^-?0\.\d{3}$/);
    expect(server.store.get(HPAS, NS, 'tokenscaler-llama').spec).toMatchObject({ maxReplicas: 8 });
    const lease = server.store.get(LEASES, NS, 'tokenscaler-controller').spec as { holderIdentity: string };
    expect(lease.holderIdentity).toMatch(/^tokenscaler-0_/);

    const apiUrl = /"msg":"controller started".*?"api":"([^"]+)"/.exec(stderr)?.[1];
    expect(apiUrl).toBeDefined();
    const response = await fetch(
      `${apiUrl}/apis/external.metrics.k8s.io/v1beta1/namespaces/${NS}/tokenscaler_desired_replicas?labelSelector=${encodeURIComponent('tokenscaler.dev/name=llama')}`,
    );
    const body = (await response.json()) as { items: Array<{ value: string }> };
    expect(body.items[0]?.value).toBe('3');
  });

  it('on shutdown stops ticking, releases the Lease and leaves the owned HPA in place', async () => {
    stop.abort();
    expect(await exit).toBe(0);
    const lease = server.store.get(LEASES, NS, 'tokenscaler-controller').spec as {
      holderIdentity?: string | null;
    };
    expect(lease.holderIdentity ?? null).toBeNull();
    expect(server.store.list(HPAS, NS).items.map((h) => h.metadata.name)).toEqual(['tokenscaler-llama']);
    expect(stderr).toMatch(
      /shutting down: stopped ticking; releasing the leader lease[\s\S]*released the leader lease[\s\S]*draining the API server/,
    );
  });
});
