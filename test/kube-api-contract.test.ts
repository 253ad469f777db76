/**
 * One contract for the Kubernetes port, run against both implementations: the real adapter
 * (`@kubernetes/client-node` over HTTP to the loopback fake API server) and the in-memory fake the
 * unit tests use. If the fake drifts from what the real client does, this suite fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientNodeKubeApi } from '../src/kube/client-node-api.ts';
import { KubeApiError } from '../src/kube/errors.ts';
import type { KubeApi, KubeObject, WatchEvent } from '../src/kube/kube-api.ts';
import { kubeConfigFromString } from '../src/kube/kube-config.ts';
import { type FakeApiServer, startFakeApiServer } from './support/fake-apiserver.ts';
import { MemoryKubeApi } from './support/fake-apiserver-memory.ts';
import { FakeStore, resourceKey, type StoredObject } from './support/fake-apiserver-store.ts';

const TKS = resourceKey('tokenscaler.dev', 'v1alpha1', 'tokenscalers');
const DEPLOY = resourceKey('apps', 'v1', 'deployments');
const PODS = resourceKey('', 'v1', 'pods');
const CM = resourceKey('', 'v1', 'configmaps');

const signal = () => AbortSignal.timeout(10_000);

function scaler(namespace: string, name: string, maxReplicas = 4): StoredObject {
  return {
    apiVersion: 'tokenscaler.dev/v1alpha1',
    kind: 'TokenScaler',
    metadata: { name, namespace },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: `${name}-deploy` },
      maxReplicas,
      model: { preset: 'llama-3.1-8b' },
      accelerator: { preset: 'h100-80gb' },
      engine: { kind: 'vllm' },
      metrics: { scrape: { urls: ['http://10.0.0.1:8000/metrics'] } },
    },
  };
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KubeApiError);
  expect((error as KubeApiError).code).toBe(code);
}

interface Subject {
  api: KubeApi;
  store: FakeStore;
  close(): Promise<void>;
}

const implementations: Array<[string, () => Promise<Subject>]> = [
  [
    'in-memory fake',
    async () => {
      const store = new FakeStore({ historySize: 50 });
      return { api: new MemoryKubeApi(store), store, close: async () => undefined };
    },
  ],
  [
    'client-node adapter over the loopback API server',
    async () => {
      const store = new FakeStore({ historySize: 50 });
      const server: FakeApiServer = await startFakeApiServer({ store });
      return {
        api: new ClientNodeKubeApi(kubeConfigFromString(server.kubeconfig()), { requestTimeoutSeconds: 5 }),
        store,
        close: () => server.close(),
      };
    },
  ],
];

describe.each(implementations)('KubeApi contract: %s', (_name, make) => {
  let subject: Subject;
  beforeAll(async () => {
    subject = await make();
  });
  afterAll(async () => {
    await subject.close();
  });

  it('lists TokenScalers of one namespace or of all, with a resourceVersion to watch from', async () => {
    subject.store.create(TKS, 'a', scaler('a', 'one'));
    subject.store.create(TKS, 'b', scaler('b', 'two'));
    const all = await subject.api.listTokenScalers(undefined, signal());
    expect(all.items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`)).toEqual(['a/one', 'b/two']);
    expect(Number(all.resourceVersion)).toBe(subject.store.revision);
    const onlyA = await subject.api.listTokenScalers('a', signal());
    expect(onlyA.items.map((i) => i.metadata.name)).toEqual(['one']);
    expect(onlyA.items[0]?.metadata.uid).toBeTypeOf('string');
    expect(onlyA.items[0]?.metadata.generation).toBe(1);
  });

  it('watches from a resourceVersion: every change after it, in order, then ends at the server timeout', async () => {
    const { resourceVersion } = await subject.api.listTokenScalers('w', signal());
    const events: WatchEvent[] = [];
    const done = subject.api.watchTokenScalers(
      'w',
      { resourceVersion, timeoutSeconds: 2 },
      (e) => events.push(e),
      signal(),
    );
    subject.store.create(TKS, 'w', scaler('w', 'x'));
    subject.store.mergePatch(TKS, 'w', 'x', { spec: { maxReplicas: 9 } });
    subject.store.create(TKS, 'other', scaler('other', 'ignored'));
    subject.store.delete(TKS, 'w', 'x');
    await done;
    const seen = events.flatMap((e) => (e.type === 'BOOKMARK' ? [] : [e]));
    expect(seen.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'ADDED x',
      'MODIFIED x',
      'DELETED x',
    ]);
    expect(
      (seen[1]?.object as (KubeObject & { spec: { maxReplicas: number } }) | undefined)?.spec.maxReplicas,
    ).toBe(9);
    expect(seen[1]?.object.metadata.generation).toBe(2);
    expect(seen.map((e) => Number(e.resourceVersion))).toEqual(
      [...seen.map((e) => Number(e.resourceVersion))].sort((a, b) => a - b),
    );
  });

  it('replays changes made before the watch started when resuming from an older version', async () => {
    const { resourceVersion } = await subject.api.listTokenScalers('r', signal());
    subject.store.create(TKS, 'r', scaler('r', 'early'));
    const events: WatchEvent[] = [];
    await subject.api.watchTokenScalers(
      'r',
      { resourceVersion, timeoutSeconds: 1 },
      (e) => events.push(e),
      signal(),
    );
    expect(events.flatMap((e) => (e.type === 'ADDED' ? [e.object.metadata.name] : []))).toEqual(['early']);
  });

  it('rejects a watch from a compacted resourceVersion with KUBE_GONE', async () => {
    const { resourceVersion } = await subject.api.listTokenScalers('g', signal());
    subject.store.create(TKS, 'g', scaler('g', 'after'));
    subject.store.compact();
    await expectCode(
      subject.api.watchTokenScalers('g', { resourceVersion, timeoutSeconds: 5 }, () => undefined, signal()),
      'KUBE_GONE',
    );
  });

  it('ends a watch quietly when the caller aborts', async () => {
    const { resourceVersion } = await subject.api.listTokenScalers('q', signal());
    const controller = new AbortController();
    const done = subject.api.watchTokenScalers(
      'q',
      { resourceVersion, timeoutSeconds: 30 },
      () => undefined,
      controller.signal,
    );
    setTimeout(() => controller.abort(), 100);
    await expect(done).resolves.toBeUndefined();
  });

  it('patches status with a merge patch: spec and generation stay, other status fields stay', async () => {
    subject.store.create(TKS, 's', scaler('s', 'st'));
    await subject.api.patchTokenScalerStatus('s', 'st', { desiredReplicas: 3, reason: 'first' }, signal());
    const patched = await subject.api.patchTokenScalerStatus('s', 'st', { reason: 'second' }, signal());
    expect(patched.status).toEqual({ desiredReplicas: 3, reason: 'second' });
    expect(patched.metadata.generation).toBe(1);
    const read = await subject.api.getTokenScaler('s', 'st', signal());
    expect((read as KubeObject & { spec: { maxReplicas: number } }).spec.maxReplicas).toBe(4);
    await expectCode(subject.api.getTokenScaler('s', 'missing', signal()), 'KUBE_NOT_FOUND');
    await expectCode(subject.api.patchTokenScalerStatus('s', 'missing', {}, signal()), 'KUBE_NOT_FOUND');
  });

  it('reads the scale subresource and the ready pods behind its selector', async () => {
    subject.store.create(DEPLOY, 'p', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'vllm' },
      spec: { replicas: 3, selector: { matchLabels: { app: 'vllm', tier: 'gpu' } } },
      status: { replicas: 3 },
    });
    const pod = (name: string, ready: boolean, labels: Record<string, string>) =>
      subject.store.create(PODS, 'p', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels },
        status: {
          phase: 'Running',
          podIP: `10.1.0.${name.length}`,
          conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
        },
      });
    pod('a', true, { app: 'vllm', tier: 'gpu' });
    pod('bb', false, { app: 'vllm', tier: 'gpu' });
    pod('ccc', true, { app: 'other' });
    const scale = await subject.api.getScale(
      'p',
      { apiVersion: 'apps/v1', kind: 'Deployment', name: 'vllm' },
      signal(),
    );
    expect(scale).toEqual({ specReplicas: 3, statusReplicas: 3, selector: 'app=vllm,tier=gpu' });
    const pods = await subject.api.listPods('p', scale.selector ?? '', signal());
    expect(pods.map((p) => [p.name, p.ready, p.ip, p.terminating])).toEqual([
      ['a', true, '10.1.0.1', false],
      ['bb', false, '10.1.0.2', false],
    ]);
    await expectCode(
      subject.api.getScale('p', { apiVersion: 'apps/v1', kind: 'Deployment', name: 'nope' }, signal()),
      'KUBE_NOT_FOUND',
    );
  });

  it('creates, reads, replaces (guarded by resourceVersion) and deletes (guarded by uid) an HPA', async () => {
    const hpa: KubeObject = {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'h', namespace: 'h' },
      spec: { minReplicas: 1, maxReplicas: 3 },
    } as KubeObject;
    expect(await subject.api.getHpa('h', 'h', signal())).toBeUndefined();
    const created = await subject.api.createHpa(hpa, signal());
    await expectCode(subject.api.createHpa(hpa, signal()), 'KUBE_ALREADY_EXISTS');
    const updated = await subject.api.replaceHpa(
      { ...created, spec: { minReplicas: 1, maxReplicas: 5 } } as KubeObject,
      signal(),
    );
    expect((updated as KubeObject & { spec: { maxReplicas: number } }).spec.maxReplicas).toBe(5);
    await expectCode(
      subject.api.replaceHpa({ ...created, spec: { maxReplicas: 7 } } as KubeObject, signal()),
      'KUBE_CONFLICT',
    );
    expect((await subject.api.listHpas('h', signal())).map((h) => h.metadata.name)).toEqual(['h']);
    await expectCode(subject.api.deleteHpa('h', 'h', 'not-the-uid', signal()), 'KUBE_CONFLICT');
    await subject.api.deleteHpa('h', 'h', created.metadata.uid ?? '', signal());
    expect(await subject.api.getHpa('h', 'h', signal())).toBeUndefined();
  });

  it('records events.k8s.io Events and their series', async () => {
    const { name } = await subject.api.createEvent(
      {
        namespace: 'e',
        regarding: {
          apiVersion: 'tokenscaler.dev/v1alpha1',
          kind: 'TokenScaler',
          name: 'llama',
          namespace: 'e',
          uid: 'u1',
        },
        type: 'Warning',
        reason: 'MetricsLost',
        action: 'Observe',
        note: 'no token metrics',
        eventTimeMs: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
        reportingController: 'tokenscaler.dev/controller',
        reportingInstance: 'pod-1',
      },
      signal(),
    );
    expect(name.startsWith('llama.')).toBe(true);
    await subject.api.patchEventSeries(
      'e',
      name,
      { count: 3, lastObservedTimeMs: Date.UTC(2026, 0, 2, 3, 5) },
      signal(),
    );
    const stored = subject.store.get(resourceKey('events.k8s.io', 'v1', 'events'), 'e', name);
    expect(stored.eventTime).toBe('2026-01-02T03:04:05.678000Z');
    expect(stored.series).toEqual({ count: 3, lastObservedTime: '2026-01-02T03:05:00.000000Z' });
    expect(stored.reason).toBe('MetricsLost');
  });

  it('creates and compare-and-swaps a Lease', async () => {
    expect(await subject.api.getLease('l', 'leader', signal())).toBeUndefined();
    const t0 = Date.UTC(2026, 0, 1, 0, 0, 0, 123);
    const created = await subject.api.createLease(
      {
        namespace: 'l',
        name: 'leader',
        holderIdentity: 'a',
        leaseDurationSeconds: 15,
        acquireTimeMs: t0,
        renewTimeMs: t0,
        leaseTransitions: 0,
      },
      signal(),
    );
    expect(created).toMatchObject({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTimeMs: t0,
      renewTimeMs: t0,
    });
    await expectCode(subject.api.createLease(created, signal()), 'KUBE_ALREADY_EXISTS');
    const renewed = await subject.api.replaceLease({ ...created, renewTimeMs: t0 + 2000 }, signal());
    expect(renewed.renewTimeMs).toBe(t0 + 2000);
    await expectCode(
      subject.api.replaceLease({ ...created, holderIdentity: 'b' }, signal()),
      'KUBE_CONFLICT',
    );
    const released = await subject.api.replaceLease({ ...renewed, holderIdentity: undefined }, signal());
    expect(released.holderIdentity).toBeUndefined();
  });

  it('reads ConfigMap data, undefined when missing', async () => {
    subject.store.create(CM, 'kube-system', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'extension-apiserver-authentication' },
      data: { 'requestheader-client-ca-file': 'PEM' },
    });
    expect(
      await subject.api.getConfigMapData('kube-system', 'extension-apiserver-authentication', signal()),
    ).toEqual({
      'requestheader-client-ca-file': 'PEM',
    });
    expect(await subject.api.getConfigMapData('kube-system', 'absent', signal())).toBeUndefined();
  });

  it('fails fast with KUBE_ABORTED when the caller has already given up', async () => {
    const controller = new AbortController();
    controller.abort();
    await expectCode(subject.api.getTokenScaler('a', 'one', controller.signal), 'KUBE_ABORTED');
  });
});

describe('client-node adapter: transport failures', () => {
  let server: FakeApiServer;
  let api: ClientNodeKubeApi;
  beforeAll(async () => {
    server = await startFakeApiServer();
    api = new ClientNodeKubeApi(kubeConfigFromString(server.kubeconfig()), { requestTimeoutSeconds: 5 });
  });
  afterAll(async () => {
    await server.close();
  });

  it.each([
    [500, 'KUBE_UNAVAILABLE'],
    [503, 'KUBE_UNAVAILABLE'],
    [429, 'KUBE_UNAVAILABLE'],
    [403, 'KUBE_FORBIDDEN'],
    [409, 'KUBE_CONFLICT'],
    [410, 'KUBE_GONE'],
    [422, 'KUBE_INVALID'],
  ])('maps HTTP %i to %s and keeps the server message', async (status, code) => {
    server.fail({ path: '/tokenscalers', status, times: 1 });
    const error = await api.listTokenScalers(undefined, signal()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as KubeApiError).code).toBe(code);
    expect((error as KubeApiError).httpStatus).toBe(status);
    expect((error as KubeApiError).message).toContain(`injected failure ${status}`);
  });

  it('sends merge patches with the merge-patch content type', async () => {
    server.store.create(TKS, 'ct', scaler('ct', 'x'));
    await api.patchTokenScalerStatus('ct', 'x', { reason: 'r' }, signal());
    const patch = server.requests.find((r) => r.method === 'PATCH' && r.path.endsWith('/x/status'));
    expect(patch?.contentType).toBe('application/merge-patch+json');
  });

  it('rejects a watch whose start is answered with 500 and one whose stream is cut resolves', async () => {
    server.fail({ path: '/tokenscalers', watch: true, status: 500, times: 1 });
    const { resourceVersion } = await api.listTokenScalers(undefined, signal());
    await expectCode(
      api.watchTokenScalers(undefined, { resourceVersion, timeoutSeconds: 5 }, () => undefined, signal()),
      'KUBE_UNAVAILABLE',
    );
    const done = api.watchTokenScalers(
      undefined,
      { resourceVersion, timeoutSeconds: 30 },
      () => undefined,
      signal(),
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(server.cutWatches()).toBe(1);
    await expect(done).resolves.toBeUndefined();
  });

  it('answers KUBE_UNAVAILABLE when nothing listens and KUBE_TIMEOUT past the deadline', async () => {
    const dead = new ClientNodeKubeApi(
      kubeConfigFromString(server.kubeconfig().replace(server.url, 'http://127.0.0.1:9')),
      { requestTimeoutSeconds: 2 },
    );
    await expectCode(dead.listTokenScalers(undefined, signal()), 'KUBE_UNAVAILABLE');
  });
});
