import { afterEach, describe, expect, it } from 'vitest';
import { MemoryKubeApi } from '../../test/support/fake-apiserver-memory.ts';
import { FakeStore, resourceKey, type StoredObject } from '../../test/support/fake-apiserver-store.ts';
import type { ScalerDefinition } from '../config/tokenscaler-spec.ts';
import { ScalerFeed } from './scaler-feed.ts';

const TKS = resourceKey('tokenscaler.dev', 'v1alpha1', 'tokenscalers');
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

function scaler(namespace: string, name: string, maxReplicas = 4): StoredObject {
  return {
    apiVersion: 'tokenscaler.dev/v1alpha1',
    kind: 'TokenScaler',
    metadata: { name, namespace },
    spec: {
      scaleTargetRef: { name: 'vllm' },
      maxReplicas,
      model: { preset: 'llama-3.1-8b' },
      accelerator: { preset: 'h100-80gb' },
      engine: { kind: 'vllm' },
      metrics: { scrape: { urls: ['http://10.0.0.1:8000/metrics'] } },
    },
  };
}

async function until(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const stops: AbortController[] = [];
afterEach(() => {
  for (const s of stops.splice(0)) s.abort();
});

function start(api: MemoryKubeApi, options: Partial<ConstructorParameters<typeof ScalerFeed>[0]> = {}) {
  const seen: ScalerDefinition[][] = [];
  const invalid: string[] = [];
  const feed = new ScalerFeed({
    api,
    namespaces: undefined,
    onScalers: (d) => {
      seen.push(d);
    },
    onInvalid: (o, m) => invalid.push(`${o.metadata.name}: ${m}`),
    logger: quiet,
    nowMs: Date.now,
    random: () => 0.5,
    backoff: { initialMs: 10, maxMs: 40 },
    watchTimeoutSeconds: 5,
    ...options,
  });
  const stop = new AbortController();
  stops.push(stop);
  const done = feed.run(stop.signal);
  const latest = () => seen.at(-1)?.map((d) => `${d.namespace}/${d.name}:${d.spec.maxReplicas}`) ?? [];
  return { feed, seen, invalid, stop, done, latest };
}

describe('ScalerFeed', () => {
  it('hands over the listed scalers, then every watched change', async () => {
    const store = new FakeStore();
    store.create(TKS, 'a', scaler('a', 'one'));
    const api = new MemoryKubeApi(store);
    const { feed, latest } = start(api);
    await feed.waitForSync(AbortSignal.timeout(2000));
    expect(latest()).toEqual(['a/one:4']);
    store.create(TKS, 'b', scaler('b', 'two'));
    store.mergePatch(TKS, 'a', 'one', { spec: { maxReplicas: 9 } });
    await until(() => latest().join() === 'a/one:9,b/two:4');
    store.delete(TKS, 'a', 'one');
    await until(() => latest().join() === 'b/two:4');
    expect(feed.object('b', 'two')?.metadata.name).toBe('two');
    expect(feed.health()).toMatchObject({ synced: true, consecutiveFailures: 0, relists: 1 });
  });

  it('relists when the watch resumes from a compacted version, and misses nothing', async () => {
    const store = new FakeStore();
    const api = new MemoryKubeApi(store);
    const { feed, latest } = start(api);
    await feed.waitForSync(AbortSignal.timeout(2000));
    store.create(TKS, 'a', scaler('a', 'x'));
    await until(() => latest().join() === 'a/x:4');
    // Changes while disconnected, then history lost: the resume gets 410 and must relist.
    api.fail({ op: 'watchTokenScalers', code: 'KUBE_UNAVAILABLE', times: 2 });
    api.cutWatches();
    store.mergePatch(TKS, 'a', 'x', { spec: { maxReplicas: 7 } });
    store.create(TKS, 'a', scaler('a', 'y'));
    store.compact();
    await until(() => latest().join() === 'a/x:7,a/y:4');
    expect(feed.health().relists).toBeGreaterThanOrEqual(2);
  });

  it('retries a failing list with backoff until it succeeds', async () => {
    const store = new FakeStore();
    store.create(TKS, 'a', scaler('a', 'one'));
    const api = new MemoryKubeApi(store);
    api.fail({ op: 'listTokenScalers', code: 'KUBE_UNAVAILABLE', times: 3 });
    const { feed, latest } = start(api);
    await feed.waitForSync(AbortSignal.timeout(3000));
    expect(latest()).toEqual(['a/one:4']);
    expect(api.actions.filter((a) => a.op === 'listTokenScalers')).toHaveLength(4);
    expect(feed.health().lastError).toContain('injected KUBE_UNAVAILABLE');
  });

  it('keeps the last valid spec when an edit does not parse, and reports it once', async () => {
    const store = new FakeStore();
    store.create(TKS, 'a', scaler('a', 'one'));
    const api = new MemoryKubeApi(store);
    const { feed, latest, invalid, seen } = start(api);
    await feed.waitForSync(AbortSignal.timeout(2000));
    store.mergePatch(TKS, 'a', 'one', { spec: { maxReplicas: 0 } });
    await until(() => invalid.length === 1);
    const handedOver = seen.length;
    store.mergePatch(TKS, 'a', 'one', { metadata: { labels: { touched: 'yes' } } });
    await until(() => seen.length > handedOver);
    expect(latest()).toEqual(['a/one:4']);
    expect(invalid).toHaveLength(1);
    expect(invalid[0]).toContain('maxReplicas');
  });

  it('cuts a watch that goes silent', async () => {
    const api = new MemoryKubeApi(new FakeStore());
    const { feed } = start(api, { silenceSeconds: 0.3, watchTimeoutSeconds: 30 });
    await feed.waitForSync(AbortSignal.timeout(2000));
    await until(() => feed.health().watchdogCuts >= 1, 3000);
  });

  it('watches several namespaces separately and merges them', async () => {
    const store = new FakeStore();
    store.create(TKS, 'a', scaler('a', 'one'));
    store.create(TKS, 'b', scaler('b', 'two'));
    store.create(TKS, 'c', scaler('c', 'ignored'));
    const api = new MemoryKubeApi(store);
    const { feed, latest } = start(api, { namespaces: ['a', 'b'] });
    await feed.waitForSync(AbortSignal.timeout(2000));
    expect(latest()).toEqual(['a/one:4', 'b/two:4']);
    expect(
      api.actions
        .filter((a) => a.op === 'listTokenScalers')
        .map((a) => a.namespace)
        .sort(),
    ).toEqual(['a', 'b']);
  });
});
