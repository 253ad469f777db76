/**
 * The cluster runtime and the reconcile loop against the loopback fake API server through the real
 * client-node, under faults: watch streams cut every second, 500s on list, watch and /scale, 410 on
 * resume (injected and after a compaction), 409 on status writes, and the metrics source down for
 * longer than the fallback. Checked: no spec update is missed, no scale-down during the outage, the
 * fallback is visible in status and events, status is written once per tick at most and not at all
 * when nothing changed, the owned HPA follows the spec, and a second writer of spec.replicas is
 * reported.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capacityOfSpec } from '../src/capacity/from-spec.ts';
import { tokenScalerSpecSchema } from '../src/config/tokenscaler-spec.ts';
import { ClientNodeKubeApi } from '../src/kube/client-node-api.ts';
import { type ClusterRuntime, createClusterRuntime } from '../src/kube/cluster-runtime.ts';
import { kubeConfigFromString } from '../src/kube/kube-config.ts';
import type { TokenScalerStatus } from '../src/kube/scaler-status.ts';
import { Reconciler } from '../src/reconcile/reconciler.ts';
import { MetricsSourceError } from '../src/sources/errors.ts';
import { type FakeApiServer, startFakeApiServer } from './support/fake-apiserver.ts';
import {
  crdStore,
  DEPLOYMENTS,
  EVENTS,
  HPAS,
  printerColumns,
  seedWorkload,
  TKS,
  tokenScaler,
} from './support/fake-apiserver-fixtures.ts';

const NS = 'inference';
const SPEC = {
  maxReplicas: 8,
  demand: { percentile: 95, windowSeconds: 1 },
  fallback: { afterSeconds: 2 },
  behavior: { scaleDownStabilizationSeconds: 0 },
  hpa: { create: true },
};
const tokensPerReplica = capacityOfSpec(
  tokenScalerSpecSchema.parse(tokenScaler(NS, 'llama', SPEC).spec),
).tokensPerReplica;

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('cluster runtime under API server faults', () => {
  let server: FakeApiServer;
  let cluster: ClusterRuntime;
  let reconciler: Reconciler;
  const metrics = { up: true, inflightTokens: Math.round(tokensPerReplica * 0.8 * 2.5) };
  const stopTicking = new AbortController();
  const stopCluster = new AbortController();
  let running: Promise<unknown>;
  const warnings: string[] = [];

  const status = () => server.store.get(TKS, NS, 'llama').status as TokenScalerStatus | undefined;
  const events = (reason: string) =>
    server.store.list(EVENTS, NS).items.filter((e) => e.reason === reason) as Array<Record<string, unknown>>;

  beforeAll(async () => {
    server = await startFakeApiServer({
      store: crdStore({ historySize: 50 }),
      printerColumns,
      bookmarkIntervalMs: 500,
    });
    seedWorkload(server.store, NS, 'vllm', 2, 2);
    server.store.create(TKS, NS, tokenScaler(NS, 'llama', SPEC));
    const api = new ClientNodeKubeApi(kubeConfigFromString(server.kubeconfig(NS)), {
      requestTimeoutSeconds: 2,
    });
    const logger = {
      info: () => undefined,
      warn: (m: string) => warnings.push(m),
      error: (m: string) => warnings.push(m),
    };
    cluster = createClusterRuntime(
      {
        identity: 'controller-0',
        namespaces: [NS],
        leaderElection: { enabled: false, namespace: NS, name: 'unused' },
        watchTimeoutSeconds: 5,
        resyncSeconds: 30,
        backoff: { initialMs: 50, maxMs: 400 },
      },
      { api, logger, nowMs: Date.now },
    );
    reconciler = new Reconciler({
      sources: () => ({
        observe: async (nowSeconds) => {
          if (!metrics.up) throw new MetricsSourceError('SCRAPE_FAILED', 'connection refused (injected)');
          return {
            observedAtSeconds: nowSeconds,
            podsReporting: 2,
            inflightTokens: metrics.inflightTokens,
            provenance: {},
          };
        },
      }),
      replicas: cluster.replicaReader,
      listeners: cluster.listeners,
      logger,
      nowMs: Date.now,
      tickSeconds: 0.25,
    });
    running = Promise.all([
      cluster.run(stopCluster.signal, (d) => reconciler.setScalers(d)),
      cluster.waitForSync(stopTicking.signal).then(() => reconciler.run(stopTicking.signal)),
    ]);
  });

  afterAll(async () => {
    server.cutWatchesEvery(0);
    stopTicking.abort();
    stopCluster.abort();
    await running;
    await server.close();
  });

  it('decides, writes status with conditions and creates the owned HPA', async () => {
    const written = await until('status with 3 desired replicas', () =>
      status()?.desiredReplicas === 3 ? status() : undefined,
    );
    expect(written).toMatchObject({
      currentReplicas: 2,
      readyReplicas: 2,
      tokensPerReplica,
      bindingConstraint: 'kv-memory',
      observedGeneration: 1,
      hpaName: 'tokenscaler-llama',
      fallbackActive: false,
    });
    expect(written?.conditions?.map((c) => [c.type, c.status])).toEqual([
      ['Ready', 'True'],
      ['MetricsAvailable', 'True'],
      ['Fits', 'Unknown'],
    ]);
    const hpa = await until('the HPA', () => server.store.list(HPAS, NS).items[0]);
    expect(hpa.metadata.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'TokenScaler',
        name: 'llama',
        controller: true,
        uid: server.store.get(TKS, NS, 'llama').metadata.uid,
      }),
    ]);
    expect(hpa.spec).toMatchObject({ minReplicas: 1, maxReplicas: 8, metrics: [{ type: 'External' }] });
    expect(events('Scaled').length + events('HPACreated').length).toBeGreaterThan(0);
  });

  it('writes status at most once per tick, and not at all while nothing changes', async () => {
    const patches = () =>
      server.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/llama/status')).length;
    await new Promise((r) => setTimeout(r, 600));
    const before = patches();
    const ticksBefore = reconciler.progress.ticks;
    await new Promise((r) => setTimeout(r, 1500));
    expect(reconciler.progress.ticks - ticksBefore).toBeGreaterThanOrEqual(4);
    expect(patches() - before).toBe(0);
  });

  it('misses no spec update while watches are cut, fail with 500, expire with 410, and status writes conflict', async () => {
    server.cutWatchesEvery(1000);
    server.fail({ method: 'GET', path: '/tokenscalers', watch: false, status: 500, times: 2 });
    server.fail({ method: 'GET', path: '/tokenscalers', watch: true, status: 500, times: 2 });
    server.fail({ method: 'PATCH', path: '/llama/status', status: 409, times: 3 });
    server.fail({ method: 'GET', path: '/deployments/vllm/scale', status: 500, times: 1 });
    server.goneNextWatches(2);
    const restartsBefore = cluster.feed.health().watchRestarts;
    for (let max = 10; max <= 15; max += 1) {
      server.store.mergePatch(TKS, NS, 'llama', { spec: { maxReplicas: max } });
      if (max === 12) server.store.compact();
      await new Promise((r) => setTimeout(r, 350));
    }
    const generation = server.store.get(TKS, NS, 'llama').metadata.generation as number;
    await until(
      'the loop to see maxReplicas 15',
      () => reconciler.get(NS, 'llama')?.scaler.spec.maxReplicas === 15,
      15_000,
    );
    await until('status of the last generation', () => status()?.observedGeneration === generation, 10_000);
    await until(
      'the HPA to follow',
      () =>
        (server.store.get(HPAS, NS, 'tokenscaler-llama').spec as { maxReplicas: number }).maxReplicas === 15,
      10_000,
    );
    const health = cluster.feed.health();
    expect(health.watchRestarts).toBeGreaterThan(restartsBefore);
    expect(health.relists).toBeGreaterThanOrEqual(2);
    expect(cluster.readiness().ready).toBe(true);
    server.cutWatchesEvery(0);
    // The 409s were retried: the status still converged, and every request the fake failed was answered.
    expect(server.requests.some((r) => r.method === 'PATCH' && r.status === 409)).toBe(true);
  });

  it('never scales down while metrics are down longer than the fallback, and says so in status and events', async () => {
    const desiredBefore = status()?.desiredReplicas as number;
    expect(desiredBefore).toBe(3);
    metrics.up = false;
    const seen: number[] = [];
    const sample = setInterval(() => {
      const d = status()?.desiredReplicas;
      if (d !== undefined) seen.push(d);
    }, 100);
    try {
      await until('fallback in status', () => status()?.fallbackActive === true, 10_000);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      clearInterval(sample);
    }
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(desiredBefore);
    const now = status() as TokenScalerStatus;
    expect(now.bindingConstraint).toBe('fallback');
    const metricsCondition = now.conditions?.find((c) => c.type === 'MetricsAvailable');
    expect(metricsCondition).toMatchObject({ status: 'False', reason: 'FallbackActive' });
    expect(metricsCondition?.message).toContain('SCRAPE_FAILED');
    expect(events('MetricsLost')).toHaveLength(1);
    expect(events('FallbackEngaged')).toHaveLength(1);
    expect(String(events('FallbackEngaged')[0]?.note)).toMatch(/fallback: no token metrics/);

    metrics.up = true;
    await until('metrics back in status', () => status()?.fallbackActive === false, 10_000);
    await until('MetricsRecovered event', () => events('MetricsRecovered').length === 1);
    expect(status()?.conditions?.find((c) => c.type === 'MetricsAvailable')?.status).toBe('True');
  });

  it('reports a second writer of spec.replicas as ReplicasContested, naming it', async () => {
    // Play the HPA: converge the target on the decision.
    server.store.mergePatch(DEPLOYMENTS, NS, 'vllm', { spec: { replicas: 3 } });
    await new Promise((r) => setTimeout(r, 600));
    for (let round = 0; round < 2; round += 1) {
      // A GitOps tool re-applies replicas: 2 ...
      server.store.mergePatch(DEPLOYMENTS, NS, 'vllm', {
        metadata: {
          managedFields: [
            {
              manager: 'kube-controller-manager',
              operation: 'Update',
              subresource: 'scale',
              time: '2026-01-01T00:00:00Z',
              fieldsV1: { 'f:spec': { 'f:replicas': {} } },
            },
            {
              manager: 'argocd-controller',
              operation: 'Apply',
              time: `2026-01-01T00:0${round + 1}:00Z`,
              fieldsV1: { 'f:spec': { 'f:replicas': {} } },
            },
          ],
        },
        spec: { replicas: 2 },
      });
      await new Promise((r) => setTimeout(r, 600));
      // ... and the HPA puts the decision back.
      server.store.mergePatch(DEPLOYMENTS, NS, 'vllm', { spec: { replicas: 3 } });
      await new Promise((r) => setTimeout(r, 600));
    }
    const contested = await until('ReplicasContested condition', () =>
      status()?.conditions?.find((c) => c.type === 'ReplicasContested' && c.status === 'True'),
    );
    expect(contested.message).toContain('"argocd-controller"');
    expect(events('ReplicasContested').length).toBeGreaterThanOrEqual(2);
  });

  it('deletes the owned HPA when spec.hpa.create turns false', async () => {
    const warningsBefore = warnings.length;
    server.store.mergePatch(TKS, NS, 'llama', { spec: { hpa: { create: false } } });
    await until('the HPA to go', () => server.store.list(HPAS, NS).items.length === 0);
    await until('hpaName to leave status', () => status()?.hpaName === undefined);
    expect(events('HPADeleted')).toHaveLength(1);
    // Listeners fail only while the fake injects failures (earlier tests); none failed here.
    expect(warnings.slice(warningsBefore).filter((w) => w.includes('listener failed'))).toEqual([]);
  });
});
