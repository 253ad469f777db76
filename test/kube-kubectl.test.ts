/**
 * Real kubectl against the fake API server, on TokenScalers whose status the controller wrote:
 * `kubectl get tks` (server-side printer columns from the generated CRD), the same JSONPaths
 * evaluated by kubectl's own JSONPath engine (custom-columns) against the stored status, and the
 * kubectl plugin `kubectl tokenscaler status` found on PATH.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientNodeKubeApi } from '../src/kube/client-node-api.ts';
import { createClusterRuntime } from '../src/kube/cluster-runtime.ts';
import { PRINTER_COLUMNS } from '../src/kube/crd.ts';
import { kubeConfigFromString } from '../src/kube/kube-config.ts';
import type { TokenScalerStatus } from '../src/kube/scaler-status.ts';
import { Reconciler } from '../src/reconcile/reconciler.ts';
import { type FakeApiServer, startFakeApiServer } from './support/fake-apiserver.ts';
import {
  crdStore,
  HPAS,
  printerColumns,
  seedWorkload,
  TKS,
  tokenScaler,
} from './support/fake-apiserver-fixtures.ts';
import { k8sBinaries } from './support/k8s-binaries.ts';

const run = promisify(execFile);
const NS = 'inference';
const ROOT = join(import.meta.dirname, '..');

describe('kubectl against TokenScalers', () => {
  let server: FakeApiServer;
  let dir: string;
  let kubectl: string;
  let env: Record<string, string>;

  const kc = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(kubectl, args, { env, timeout: 30_000 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  beforeAll(async () => {
    ({ kubectl } = await k8sBinaries());
    server = await startFakeApiServer({ store: crdStore(), printerColumns });
    seedWorkload(server.store, NS, 'vllm', 3, 2);
    server.store.create(TKS, NS, tokenScaler(NS, 'llama', { maxReplicas: 12, hpa: { create: true } }));
    server.store.create(
      TKS,
      NS,
      tokenScaler(NS, 'idle', {
        metrics: { prometheus: { url: 'http://prometheus:9090', selector: '{app="none"}' } },
      }),
    );

    // Let the controller write real status (and create the HPA), then stop it.
    const api = new ClientNodeKubeApi(kubeConfigFromString(server.kubeconfig(NS)));
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const cluster = createClusterRuntime(
      { identity: 'c0', namespaces: [NS], leaderElection: { enabled: false, namespace: NS, name: 'x' } },
      { api, logger: quiet, nowMs: Date.now },
    );
    const reconciler = new Reconciler({
      sources: (scaler) => ({
        observe: async (nowSeconds) => {
          if (scaler.name === 'idle') throw new Error('no Prometheus here');
          return {
            observedAtSeconds: nowSeconds,
            podsReporting: 2,
            inflightTokens: 900_000,
            waitingTokens: 20_000,
            requestInputTokens: { p95: 6000 },
            requestOutputTokens: { p95: 1500 },
            provenance: {},
          };
        },
      }),
      replicas: cluster.replicaReader,
      listeners: cluster.listeners,
      logger: quiet,
      nowMs: Date.now,
      tickSeconds: 0.25,
    });
    const stop = new AbortController();
    const done = Promise.all([
      cluster.run(stop.signal, (d) => reconciler.setScalers(d)),
      cluster.waitForSync(stop.signal).then(() => reconciler.run(stop.signal)),
    ]);
    const deadline = Date.now() + 10_000;
    while (
      (server.store.get(TKS, NS, 'llama').status as TokenScalerStatus | undefined)?.desiredReplicas ===
        undefined ||
      server.store.list(HPAS, NS).items.length === 0
    ) {
      if (Date.now() > deadline) throw new Error('the controller wrote no status');
      await new Promise((r) => setTimeout(r, 50));
    }
    stop.abort();
    await done;
    // Play the HPA controller: its own status.
    server.store.mergePatch(
      HPAS,
      NS,
      'tokenscaler-llama',
      {
        status: {
          currentReplicas: 3,
          desiredReplicas: 4,
          currentMetrics: [
            {
              type: 'External',
              external: {
                metric: { name: 'tokenscaler_desired_replicas' },
                current: { averageValue: '1333m' },
              },
            },
          ],
          conditions: [
            {
              type: 'AbleToScale',
              status: 'True',
              reason: 'SucceededRescale',
              message: 'the HPA controller was able to update the target scale to 4',
            },
            { type: 'ScalingActive', status: 'True', reason: 'ValidMetricFound', message: 'valid metric' },
          ],
        },
      },
      'status',
    );

    dir = await mkdtemp(join(tmpdir(), 'tks-kubectl-'));
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, server.kubeconfig(NS));
    const pluginDir = join(dir, 'plugins');
    await mkdir(pluginDir);
    await symlink(join(ROOT, 'bin', 'kubectl-tokenscaler.js'), join(pluginDir, 'kubectl-tokenscaler'));
    env = {
      PATH: [pluginDir, dirname(process.execPath), '/usr/bin', '/bin'].join(':'),
      HOME: dir,
      KUBECONFIG: kubeconfig,
      KUBECACHEDIR: join(dir, 'cache'),
      NO_COLOR: '1',
    };
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('kubectl get tks prints the printer columns with the values the controller wrote', async () => {
    const status = server.store.get(TKS, NS, 'llama').status as TokenScalerStatus;
    const { code, stdout, stderr } = await kc('get', 'tks');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const [header, ...rows] = stdout.trim().split('\n');
    expect(header?.split(/\s+/)).toEqual([
      'NAME',
      'TARGET',
      'MIN',
      'MAX',
      'DESIRED',
      'CURRENT',
      'DEMAND',
      'CAPACITY',
      'BOUND',
      'AGE',
    ]);
    const llama = rows.find((r) => r.startsWith('llama'))?.split(/\s+/);
    expect(llama?.slice(0, 9)).toEqual([
      'llama',
      'vllm',
      '1',
      '12',
      String(status.desiredReplicas),
      '3',
      String(status.demandTokens),
      String(status.tokensPerReplica),
      status.bindingConstraint,
    ]);
    expect(llama?.[9]).toMatch(/^\d+s$/);
    // No metrics yet: DEMAND is empty, the bound is a hold.
    const idle = rows.find((r) => r.startsWith('idle'))?.split(/\s+/);
    expect(idle?.slice(0, 6)).toEqual(['idle', 'vllm', '1', '8', '3', '3']);
    expect(idle).toContain('hold');
  });

  it('kubectl get tks -o wide adds the condition columns, and the short name, singular and category resolve', async () => {
    const wide = await kc('get', 'tokenscalers.tokenscaler.dev', '-o', 'wide');
    expect(wide.stdout.split('\n')[0]?.split(/\s+/).slice(-4)).toEqual(['READY', 'METRICS', 'FITS', 'AGE']);
    const llama = wide.stdout
      .split('\n')
      .find((l) => l.startsWith('llama'))
      ?.split(/\s+/);
    expect(llama?.slice(-4, -1)).toEqual(['True', 'True', 'True']);
    expect((await kc('get', 'tokenscaler', 'llama')).code).toBe(0);
    const all = await kc('get', 'tokenscaler', '-A');
    expect(all.stdout.split('\n')[0]?.startsWith('NAMESPACE')).toBe(true);
  });

  it("kubectl's own JSONPath engine reads every printer column from the stored object", async () => {
    const columns = PRINTER_COLUMNS.map((c) => `${c.name.toUpperCase()}:${c.jsonPath}`).join(',');
    const { stdout, code, stderr } = await kc('get', 'tks', 'llama', '-o', `custom-columns=${columns}`);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const cells = stdout.trim().split('\n')[1]?.split(/\s+/) ?? [];
    const stored = server.store.get(TKS, NS, 'llama');
    const status = stored.status as TokenScalerStatus;
    expect(cells).toEqual([
      'vllm',
      '1',
      '12',
      String(status.desiredReplicas),
      String(status.currentReplicas),
      String(status.demandTokens),
      String(status.tokensPerReplica),
      String(status.bindingConstraint),
      'True',
      'True',
      'True',
      String(stored.metadata.creationTimestamp),
    ]);
    expect(cells).not.toContain('<none>');
  });

  it('kubectl tokenscaler status explains each scaler and the HPA it feeds', async () => {
    const { stdout, stderr, code } = await kc('tokenscaler', 'status');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('inference/llama -> Deployment/vllm   Ready=True');
    expect(stdout).toMatch(/Replicas {3}desired \d+, current 3, ready 2 {2}\(min 1, max 12\)/);
    expect(stdout).toMatch(/Bound by {3}(kv-memory|queue): /);
    expect(stdout).toContain('P95 request 7,500 tokens');
    expect(stdout).toMatch(/Capacity {3}[\d,]+ tokens\/replica from the capacity model, target 80% KV/);
    expect(stdout).toContain('llama-3.1-8b on 1x h100-80gb; vllm');
    expect(stdout).toMatch(
      /Conditions Ready=True Deciding \(\d+s\)\n {13}MetricsAvailable=True MetricsFresh/,
    );
    expect(stdout).toMatch(/Decisions +\d+s ago/);
    expect(stdout).toContain(
      'HPA        tokenscaler-llama: current 3, desired 4 (min 1, max 12); tokenscaler_desired_replicas 1333m/1',
    );
    expect(stdout).toContain('inference/idle -> Deployment/vllm');
    expect(stdout).toMatch(/MetricsAvailable=False MetricsMissing \(\d+s\): hold: no token metrics/);
    expect(stdout).not.toContain('\u001b[');
  });

  it('kubectl tokenscaler status NAME -o json gives the fields of DESIGN.md', async () => {
    const { stdout, code } = await kc('tokenscaler', 'status', 'llama', '-n', NS, '-o', 'json');
    expect(code).toBe(0);
    const { scalers } = JSON.parse(stdout) as { scalers: Array<Record<string, unknown>> };
    const status = server.store.get(TKS, NS, 'llama').status as TokenScalerStatus;
    expect(scalers).toHaveLength(1);
    expect(scalers[0]).toMatchObject({
      namespace: NS,
      name: 'llama',
      desiredReplicas: status.desiredReplicas,
      currentReplicas: 3,
      readyReplicas: 2,
      bindingConstraint: status.bindingConstraint,
      demand: {
        demandTokens: status.demandTokens,
        inflightTokens: 900_000,
        waitingTokens: 20_000,
        requestTokensP95: 7500,
        percentile: 95,
      },
      capacity: {
        tokensPerReplica: status.tokensPerReplica,
        source: 'model',
        kvBytesPerToken: status.kvBytesPerToken,
      },
      hpa: {
        name: 'tokenscaler-llama',
        found: true,
        managedByTokenscaler: true,
        currentReplicas: 3,
        desiredReplicas: 4,
      },
    });
    const yaml = await kc('tokenscaler', 'status', 'llama', '-o', 'yaml');
    expect(yaml.stdout).toContain('name: llama');
  });

  it('says what is wrong: an unknown scaler, a bad flag', async () => {
    const missing = await kc('tokenscaler', 'status', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('TokenScaler inference/nope not found');
    const bad = await kc('tokenscaler', 'status', '-o', 'xml');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--output: "xml" is not allowed; expected one of json, yaml, text');
    const empty = await kc('tokenscaler', '-n', 'elsewhere');
    expect(empty.stdout).toBe('No TokenScalers found in namespace elsewhere.\n');
  });
});
