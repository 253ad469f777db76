/**
 * End to end on a real cluster. Opt-in: runs only when KUBECONFIG is set and TOKENSCALER_E2E=1 (so a
 * developer's KUBECONFIG never points a routine `npm test` at a real cluster). Needs cluster-admin
 * and an image of this repository the cluster can pull (TOKENSCALER_E2E_IMAGE, e.g. a tag loaded
 * into kind with `kind load docker-image`).
 *
 *   TOKENSCALER_E2E=1 KUBECONFIG=~/.kube/config TOKENSCALER_E2E_IMAGE=tokenscaler:dev \
 *     npx vitest run test/e2e-cluster.test.ts
 *
 * What it does, with the real kubectl and helm: installs the CRD and checks the API server's own
 * validation (CEL rules) rejects a bad TokenScaler; installs the chart; runs a fake vLLM engine
 * (node serving vLLM metrics, from the same image) as the scale target; creates a TokenScaler with
 * pod discovery and an owned HPA; then waits for the status, the HPA and the Deployment to reach the
 * replicas the KV demand needs, and reads it back with `kubectl tokenscaler status`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { k8sBinaries } from './support/k8s-binaries.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const enabled =
  process.env.KUBECONFIG !== undefined &&
  process.env.KUBECONFIG !== '' &&
  process.env.TOKENSCALER_E2E === '1';
const IMAGE = process.env.TOKENSCALER_E2E_IMAGE ?? 'tokenscaler:dev';
const suffix = Math.random().toString(36).slice(2, 7);
const NS = `tks-e2e-${suffix}`;
const SYSTEM_NS = `tks-system-${suffix}`;

/** A vLLM /metrics page: 27,898 blocks x 16 = 446,368 tokens per replica, 90% in use. */
const ENGINE_SCRIPT = `
const http = require('node:http');
const page = [
  '# TYPE vllm:num_requests_running gauge', 'vllm:num_requests_running{engine="0",model_name="m"} 12',
  '# TYPE vllm:num_requests_waiting gauge', 'vllm:num_requests_waiting{engine="0",model_name="m"} 0',
  '# TYPE vllm:kv_cache_usage_perc gauge', 'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.9',
  '# TYPE vllm:cache_config_info gauge',
  'vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="0",gpu_memory_utilization="0.9",num_gpu_blocks="27898"} 1.0', ''].join('\\n');
http.createServer((q, s) => s.writeHead(q.url === '/metrics' ? 200 : 404, {'content-type': 'text/plain; version=0.0.4'}).end(page)).listen(8000);
`;

describe.skipIf(!enabled)('a real cluster', () => {
  let kubectl: string;
  let helm: string;
  let dir: string;
  const env = () => ({
    ...process.env,
    PATH: `${join(dir, 'plugins')}:${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
  });
  const k = async (...args: string[]) => (await run(kubectl, args, { env: env(), timeout: 120_000 })).stdout;
  const apply = async (yaml: string) => {
    const file = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, yaml);
    return k('apply', '-f', file);
  };
  const until = async <T>(
    what: string,
    check: () => Promise<T | undefined>,
    timeoutMs = 300_000,
  ): Promise<T> => {
    const started = Date.now();
    for (;;) {
      const value = await check().catch(() => undefined);
      if (value !== undefined) return value;
      if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 3000));
    }
  };

  beforeAll(async () => {
    ({ kubectl, helm } = await k8sBinaries());
    dir = await mkdtemp(join(tmpdir(), 'tks-e2e-'));
    await run('mkdir', ['-p', join(dir, 'plugins')]);
    await run('ln', [
      '-s',
      join(ROOT, 'bin', 'kubectl-tokenscaler.js'),
      join(dir, 'plugins', 'kubectl-tokenscaler'),
    ]);
    await k('create', 'namespace', NS);
    await k('create', 'namespace', SYSTEM_NS);
  }, 120_000);

  afterAll(async () => {
    if (!enabled) return;
    await run(helm, ['uninstall', 'tokenscaler', '-n', SYSTEM_NS], { env: env() }).catch(() => undefined);
    await k('delete', 'namespace', NS, SYSTEM_NS, '--wait=false').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('serves the CRD and rejects an invalid TokenScaler with the CEL rule', async () => {
    await k(
      'apply',
      '--server-side',
      '-f',
      join(ROOT, 'charts', 'tokenscaler', 'crds', 'tokenscalers.tokenscaler.dev.yaml'),
    );
    await k('wait', '--for=condition=Established', 'crd/tokenscalers.tokenscaler.dev', '--timeout=60s');
    const bad = apply(`apiVersion: tokenscaler.dev/v1alpha1
kind: TokenScaler
metadata: {name: bad, namespace: ${NS}}
spec:
  scaleTargetRef: {name: x}
  minReplicas: 5
  maxReplicas: 2
  model: {preset: llama-3.1-8b}
  accelerator: {preset: h100-80gb}
  engine: {kind: vllm}
  metrics: {scrape: {urls: ["http://10.0.0.1:8000/metrics"]}}
`);
    await expect(bad).rejects.toThrow(/minReplicas must not exceed maxReplicas/);
  }, 120_000);

  it('installs, decides from pod metrics, and the owned HPA scales the Deployment', async () => {
    const [repository, tag] = IMAGE.includes(':')
      ? [IMAGE.slice(0, IMAGE.lastIndexOf(':')), IMAGE.slice(IMAGE.lastIndexOf(':') + 1)]
      : [IMAGE, 'latest'];
    await run(
      helm,
      [
        'upgrade',
        '--install',
        'tokenscaler',
        join(ROOT, 'charts', 'tokenscaler'),
        '-n',
        SYSTEM_NS,
        '--set',
        `image.repository=${repository}`,
        '--set',
        `image.tag=${tag}`,
        '--set',
        'image.pullPolicy=IfNotPresent',
        '--wait',
        '--timeout',
        '5m',
      ],
      { env: env(), timeout: 360_000 },
    );
    await apply(`apiVersion: apps/v1
kind: Deployment
metadata: {name: fake-vllm, namespace: ${NS}}
spec:
  replicas: 1
  selector: {matchLabels: {app: fake-vllm}}
  template:
    metadata: {labels: {app: fake-vllm}}
    spec:
      containers:
        - name: engine
          image: ${IMAGE}
          imagePullPolicy: IfNotPresent
          command: [node, -e, ${JSON.stringify(ENGINE_SCRIPT)}]
          ports: [{containerPort: 8000}]
          readinessProbe: {httpGet: {path: /metrics, port: 8000}, periodSeconds: 2}
---
apiVersion: tokenscaler.dev/v1alpha1
kind: TokenScaler
metadata: {name: llama, namespace: ${NS}}
spec:
  scaleTargetRef: {name: fake-vllm}
  minReplicas: 1
  maxReplicas: 3
  model: {preset: llama-3.1-8b}
  accelerator: {preset: h100-80gb}
  engine: {kind: vllm}
  metrics: {scrape: {podSelector: {matchLabels: {app: fake-vllm}}, port: 8000}}
  demand: {windowSeconds: 30}
  hpa: {create: true}
`);
    // One replica at 90% of 446,368 tokens: 401,731 / (446,368 x 0.8) = 1.13 -> 2 replicas; then two
    // replicas report twice the tokens -> 3, capped at maxReplicas 3.
    const status = await until('the status', async () => {
      const s = JSON.parse(await k('get', 'tks', 'llama', '-n', NS, '-o', 'jsonpath={.status}')) as Record<
        string,
        unknown
      >;
      return typeof s.desiredReplicas === 'number' && (s.desiredReplicas as number) >= 2 ? s : undefined;
    });
    expect(status.capacitySource).toBe('engine');
    await until('the HPA to exist', async () =>
      (await k('get', 'hpa', 'tokenscaler-llama', '-n', NS, '-o', 'name')).trim() !== '' ? true : undefined,
    );
    const replicas = await until('the Deployment to scale', async () => {
      const n = Number(
        await k('get', 'deployment', 'fake-vllm', '-n', NS, '-o', 'jsonpath={.spec.replicas}'),
      );
      return n >= 2 ? n : undefined;
    });
    expect(replicas).toBeGreaterThanOrEqual(2);
    const report = JSON.parse(await k('tokenscaler', 'status', 'llama', '-n', NS, '-o', 'json')) as {
      scalers: Array<{ hpa: { found: boolean } }>;
    };
    expect(report.scalers[0]?.hpa.found).toBe(true);
    const columns = await k('get', 'tks', '-n', NS);
    expect(columns.split('\n')[0]).toMatch(
      /NAME\s+TARGET\s+MIN\s+MAX\s+DESIRED\s+CURRENT\s+DEMAND\s+CAPACITY\s+BOUND\s+AGE/,
    );
  }, 900_000);
});
