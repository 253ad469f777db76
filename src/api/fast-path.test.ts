import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decision, sampleStore } from '../../test/api-fixtures.ts';
import type { ApiAppDeps, ApiLogger } from './app.ts';
import { createApiApp } from './app.ts';
import type { AuthenticationResult, AuthorizationDecision, Authorizer } from './auth.ts';
import { authenticatedUsersAuthorizer } from './auth.ts';
import { SERVED_METRICS } from './catalog.ts';
import type { DecisionStore, PublishedScaler } from './decision-store.ts';
import { InMemoryDecisionStore } from './decision-store.ts';
import { createApiRequestListener, createFastPath, parseFastRoute, Renderings } from './fast-path.ts';
import { createApiMetrics } from './metrics.ts';
import {
  answerCustomMetricQuery,
  answerExternalMetricQuery,
  prepareCustomMetricQuery,
  prepareExternalMetricQuery,
  queryKeda,
} from './queries.ts';

/**
 * The fast path against the express app it stands in front of: the same request to a server with
 * the fast path and to one with express alone must get the same status line, header lines (but
 * Date) and body, and the fast path must have answered the requests it is meant to.
 */

const USERS: Record<string, AuthenticationResult> = {
  hpa: {
    ok: true,
    user: {
      name: 'system:serviceaccount:kube-system:horizontal-pod-autoscaler',
      groups: ['system:authenticated'],
      extra: {},
      via: 'front-proxy',
    },
  },
  anonymous: {
    ok: true,
    user: { name: 'system:anonymous', groups: ['system:unauthenticated'], extra: {}, via: 'front-proxy' },
  },
};

interface Served {
  status: number;
  statusMessage: string;
  /** Raw header lines, name case kept, Date left out (it is the clock). */
  headers: string[];
  body: string;
}

interface Harness {
  base: string;
  /** For each request the fast path saw: true when it answered, false when it left it to express. */
  fastAnswered: boolean[];
  close(): Promise<void>;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });
const EXTERNAL = '/apis/external.metrics.k8s.io/v1beta1';
const CUSTOM = '/apis/custom.metrics.k8s.io/v1beta2';

async function listen(
  listener: Parameters<typeof createServer>[1],
): Promise<{ server: Server; base: string }> {
  const server = createServer(listener);
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The fast path composed with express as `createApiRequestListener` does, recording which answered. */
async function withFastPath(deps: ApiAppDeps, routeCacheEntries?: number): Promise<Harness> {
  const app = createApiApp(deps);
  const fast = createFastPath(deps, routeCacheEntries === undefined ? {} : { routeCacheEntries });
  const fastAnswered: boolean[] = [];
  const { server, base } = await listen((req, res) => {
    const answered = fast(req, res);
    fastAnswered.push(answered);
    if (!answered) app(req, res);
  });
  return { base, fastAnswered, close: () => stop(server) };
}

async function expressOnly(deps: ApiAppDeps): Promise<Harness> {
  const { server, base } = await listen(createApiApp(deps));
  return { base, fastAnswered: [], close: () => stop(server) };
}

function call(
  base: string,
  path: string,
  options: { identity?: string; method?: string; headers?: Record<string, string> } = {},
): Promise<Served> {
  const url = new URL(`${base}${path}`);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: url.hostname,
        port: url.port,
        // The path as given: new URL() would normalise what the test means to send raw.
        path,
        method: options.method ?? 'GET',
        agent,
        headers: {
          ...(options.identity === undefined ? {} : { 'x-test-identity': options.identity }),
          ...options.headers,
        },
        timeout: 5000,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const headers: string[] = [];
          for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) {
            const name = response.rawHeaders[i] ?? '';
            if (name.toLowerCase() !== 'date') headers.push(`${name}: ${response.rawHeaders[i + 1]}`);
          }
          resolve({
            status: response.statusCode ?? 0,
            statusMessage: response.statusMessage ?? '',
            headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`${path} timed out`)));
    outgoing.on('error', reject);
    outgoing.end();
  });
}

function recordingLogger(): ApiLogger & { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  return {
    errors,
    warnings,
    info: () => {},
    warn: (message) => warnings.push(message),
    error: (message) => errors.push(message),
  };
}

function depsFor(
  store: DecisionStore,
  overrides: Partial<Omit<ApiAppDeps, 'logger'>> = {},
): ApiAppDeps & { logger: ReturnType<typeof recordingLogger>; registry: Registry } {
  const registry = new Registry();
  const logger = recordingLogger();
  return {
    store,
    authenticate: (req) =>
      USERS[String(req.headers['x-test-identity'])] ?? {
        ok: false,
        message: 'no client certificate was presented',
      },
    authorizer: authenticatedUsersAuthorizer,
    readiness: () => ({ ready: true }),
    logger,
    metrics: createApiMetrics(registry),
    registry,
    ...overrides,
  };
}

/** Stores that throw for namespace `boom`, as app.test.ts does. */
function withExplodingNamespace(store: DecisionStore): DecisionStore {
  const explode = () => {
    throw new Error('store exploded');
  };
  return {
    get: (ns, name) => (ns === 'boom' ? explode() : store.get(ns, name)),
    list: (ns) => (ns === 'boom' ? explode() : store.list(ns)),
    synced: () => store.synced(),
    version: () => store.version?.() ?? 0,
  };
}

/** sampleStore plus scalers whose values are no quantity (a bug upstream: 500) or not a number. */
function quirkyStore(): InMemoryDecisionStore {
  const store = sampleStore();
  store.publish('quirks', 'negative', decision({ demandTokens: -5 }), { demandWindowSeconds: 120 });
  store.publish('quirks', 'nan', decision({ inflightTokens: Number.NaN, requestTokensP95: Number.NaN }));
  return store;
}

const sel = (text: string) => `labelSelector=${encodeURIComponent(text)}`;

afterAll(() => agent.destroy());

describe('the fast path answers as express does', () => {
  let fast: Harness;
  let plain: Harness;

  beforeAll(async () => {
    fast = await withFastPath(depsFor(withExplodingNamespace(quirkyStore())));
    plain = await expressOnly(depsFor(withExplodingNamespace(quirkyStore())));
  });

  afterAll(async () => {
    await fast.close();
    await plain.close();
  });

  beforeEach(() => {
    fast.fastAnswered.length = 0;
  });

  // [path, identity, expected status, answered by the fast path]
  it.each<[string, string | undefined, number, boolean]>([
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${sel('tokenscaler.dev/name=llama-70b')}`,
      'hpa',
      200,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_demand_tokens?${sel('tokenscaler.dev/name=llama-70b')}`,
      'hpa',
      200,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_demand_tokens?${sel('tokenscaler.dev/name=llama-8b')}`,
      'hpa',
      200,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_inflight_tokens?${sel('tokenscaler.dev/name=llama-8b')}`,
      'hpa',
      503,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?labelSelector=tokenscaler.dev%2Fname+in+%28llama-70b%2Cllama-8b%29`,
      'hpa',
      200,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/inference/TokenScaler%5FDesired%5FReplicas?${sel('tokenscaler.dev/name=llama-70b')}`,
      'hpa',
      200,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${sel('tokenscaler.dev/name notin (new)')}`,
      'hpa',
      200,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${sel('tokenscaler.dev/name')}`,
      'hpa',
      503,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${sel('!tokenscaler.dev/name')}`,
      'hpa',
      404,
      true,
    ],
    [`${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas`, 'hpa', 503, true],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${sel('tokenscaler.dev/name=new')}`,
      'hpa',
      503,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${sel('tokenscaler.dev/name=nope')}`,
      'hpa',
      404,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/empty/tokenscaler_desired_replicas?${sel('tokenscaler.dev/name=x')}`,
      'hpa',
      404,
      true,
    ],
    [`${EXTERNAL}/namespaces/inference/unknown?${sel('tokenscaler.dev/name=llama-70b')}`, 'hpa', 404, true],
    [`${EXTERNAL}/namespaces/inference/unknown?labelSelector=a+in`, 'hpa', 404, true],
    [`${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?labelSelector=a+in`, 'hpa', 400, true],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?labelSelector=a&labelSelector=b`,
      'hpa',
      404,
      true,
    ],
    [`${EXTERNAL}/namespaces/boom/tokenscaler_desired_replicas`, 'hpa', 500, true],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_inflight_tokens?${sel('tokenscaler.dev/name in (llama-70b,llama-8b)')}`,
      'hpa',
      503,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_tokens_per_replica?${sel('tokenscaler.dev/name in (llama-70b,llama-8b)')}`,
      'hpa',
      200,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/quirks/tokenscaler_demand_tokens?${sel('tokenscaler.dev/name=negative')}`,
      'hpa',
      500,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/quirks/tokenscaler_desired_replicas?${sel('tokenscaler.dev/name')}`,
      'hpa',
      200,
      true,
    ],
    [
      `${EXTERNAL}/namespaces/quirks/tokenscaler_inflight_tokens?${sel('tokenscaler.dev/name=nan')}`,
      'hpa',
      500,
      true,
    ],
    [
      `${CUSTOM}/namespaces/quirks/tokenscalers.tokenscaler.dev/negative/tokenscaler_demand_tokens`,
      'hpa',
      500,
      true,
    ],
    [
      `${CUSTOM}/namespaces/quirks/tokenscalers.tokenscaler.dev/negative/tokenscaler_desired_replicas`,
      'hpa',
      200,
      true,
    ],
    ['/keda/v1/namespaces/quirks/tokenscalers/nan', 'hpa', 200, true],
    ['/keda/v1/namespaces/quirks/tokenscalers/negative', 'hpa', 200, true],
    [`${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas`, 'anonymous', 403, true],
    [`${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas`, undefined, 401, false],
    [`${EXTERNAL}/namespaces/inference/%E0%A4%A`, 'hpa', 400, false],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas/?${sel('tokenscaler.dev/name=llama-70b')}`,
      'hpa',
      200,
      false,
    ],
    [`${EXTERNAL}/namespaces//tokenscaler_desired_replicas`, 'hpa', 404, false],
    [`${EXTERNAL}/namespaces/inf(erence)/tokenscaler_desired_replicas`, 'hpa', 404, false],
    [`${EXTERNAL}/namespaces/inference`, 'hpa', 404, false],
    [`${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas/extra`, 'hpa', 404, false],
    [
      `/APIS/external.metrics.k8s.io/v1beta1/namespaces/inference/tokenscaler_desired_replicas`,
      'hpa',
      404,
      false,
    ],
    [
      `${CUSTOM}/namespaces/inference/tokenscalers.tokenscaler.dev/llama-70b/tokenscaler_desired_replicas`,
      'hpa',
      200,
      true,
    ],
    [
      `${CUSTOM}/namespaces/inference/TokenScalers.tokenscaler.dev/llama-70b/tokenscaler_demand_tokens`,
      'hpa',
      200,
      true,
    ],
    [
      `${CUSTOM}/namespaces/inference/tokenscalers.tokenscaler.dev/*/tokenscaler_desired_replicas?${sel('tokenscaler.dev/name in (llama-70b,llama-8b)')}`,
      'hpa',
      200,
      true,
    ],
    [
      `${CUSTOM}/namespaces/inference/tokenscalers.tokenscaler.dev/*/tokenscaler_desired_replicas?labelSelector=a+in`,
      'hpa',
      400,
      true,
    ],
    [
      `${CUSTOM}/namespaces/inference/tokenscalers.tokenscaler.dev/llama-70b/tokenscaler_desired_replicas?labelSelector=a+in`,
      'hpa',
      200,
      true,
    ],
    [
      `${CUSTOM}/namespaces/inference/tokenscalers.tokenscaler.dev/llama-70b/tokenscaler_desired_replicas?metricLabelSelector=${encodeURIComponent('tokenscaler.dev/name=other')}`,
      'hpa',
      404,
      true,
    ],
    [
      `${CUSTOM}/namespaces/inference/tokenscalers.tokenscaler.dev/llama-70b/tokenscaler_desired_replicas?metricLabelSelector=a+in`,
      'hpa',
      400,
      true,
    ],
    [`${CUSTOM}/namespaces/inference/pods/llama-70b/tokenscaler_desired_replicas`, 'hpa', 404, true],
    [
      `${CUSTOM}/namespaces/inference/tokenscalers.tokenscaler.dev/nope/tokenscaler_desired_replicas`,
      'hpa',
      404,
      true,
    ],
    [
      `${CUSTOM}/namespaces/inference/tokenscalers.tokenscaler.dev/new/tokenscaler_desired_replicas`,
      'hpa',
      503,
      true,
    ],
    [`${CUSTOM}/namespaces/inference/tokenscalers.tokenscaler.dev/llama-70b/unknown`, 'hpa', 404, true],
    [
      `${CUSTOM}/namespaces/inference/tokenscalers.tokenscaler.dev/llama-70b/tokenscaler_desired_replicas`,
      'anonymous',
      403,
      true,
    ],
    ['/keda/v1/namespaces/inference/tokenscalers/llama-70b', 'hpa', 200, true],
    ['/keda/v1/namespaces/inference/tokenscalers/llama-8b?ignored=1', 'hpa', 200, true],
    ['/keda/v1/namespaces/inference/tokenscalers/new', 'hpa', 503, true],
    ['/keda/v1/namespaces/inference/tokenscalers/nope', 'hpa', 404, true],
    ['/keda/v1/namespaces/boom/tokenscalers/x', 'hpa', 500, true],
    ['/keda/v1/namespaces/inference/tokenscalers/llama-70b', 'anonymous', 403, true],
    ['/keda/v1/namespaces/inference/tokenscaler%73/llama-70b', 'hpa', 404, false],
    ['/keda/v1/namespaces/inference/scalers/llama-70b', 'hpa', 404, false],
    [EXTERNAL, 'hpa', 200, false],
    ['/apis', 'hpa', 200, false],
    ['/healthz', undefined, 200, false],
  ])('%s as %s -> %d (fast path: %s)', async (path, identity, status, answeredFast) => {
    const options = identity === undefined ? {} : { identity };
    const viaFast = await call(fast.base, path, options);
    const viaExpress = await call(plain.base, path, options);
    expect(viaFast.status).toBe(status);
    expect(viaFast).toEqual(viaExpress);
    expect(fast.fastAnswered).toEqual([answeredFast]);
  });

  it('leaves other methods to express (HEAD, POST)', async () => {
    const path = `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${sel('tokenscaler.dev/name=llama-70b')}`;
    for (const method of ['HEAD', 'POST']) {
      const viaFast = await call(fast.base, path, { identity: 'hpa', method });
      expect(viaFast).toEqual(await call(plain.base, path, { identity: 'hpa', method }));
    }
    expect(fast.fastAnswered).toEqual([false, false]);
  });

  it('logs the same failures and counts the same requests by route and code', async () => {
    const fastDeps = depsFor(withExplodingNamespace(sampleStore()));
    const plainDeps = depsFor(withExplodingNamespace(sampleStore()));
    const fastServer = await withFastPath(fastDeps);
    const plainServer = await expressOnly(plainDeps);
    const metric = `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas`;
    const requests: Array<[string, string | undefined]> = [
      [`${metric}?${sel('tokenscaler.dev/name=llama-70b')}`, 'hpa'],
      [`${metric}?${sel('tokenscaler.dev/name=llama-70b')}`, 'hpa'],
      [`${metric}?${sel('tokenscaler.dev/name=new')}`, 'hpa'],
      [metric, 'anonymous'],
      [metric, undefined],
      [`${EXTERNAL}/namespaces/boom/tokenscaler_desired_replicas`, 'hpa'],
      ['/keda/v1/namespaces/inference/tokenscalers/llama-70b', 'hpa'],
    ];
    try {
      for (const [path, identity] of requests) {
        const options = identity === undefined ? {} : { identity };
        await call(fastServer.base, path, options);
        await call(plainServer.base, path, options);
      }
    } finally {
      await fastServer.close();
      await plainServer.close();
    }
    const counts = async (registry: Registry) =>
      (await registry.metrics())
        .split('\n')
        .filter((line) => line.startsWith('tokenscaler_api_requests_total{'))
        .sort();
    expect(await counts(fastDeps.registry)).toEqual([
      'tokenscaler_api_requests_total{route="external",code="200"} 2',
      'tokenscaler_api_requests_total{route="external",code="500"} 1',
      'tokenscaler_api_requests_total{route="external",code="503"} 1',
      'tokenscaler_api_requests_total{route="forbidden",code="403"} 1',
      'tokenscaler_api_requests_total{route="keda",code="200"} 1',
      'tokenscaler_api_requests_total{route="unauthenticated",code="401"} 1',
    ]);
    expect(await counts(fastDeps.registry)).toEqual(await counts(plainDeps.registry));
    expect(fastDeps.logger.errors).toEqual(['metrics API request failed', 'metrics API request failed']);
    expect(fastDeps.logger.errors).toEqual(plainDeps.logger.errors);
    expect(fastDeps.logger.warnings).toEqual(['metrics API request rejected (401)']);
    expect(fastDeps.logger.warnings).toEqual(plainDeps.logger.warnings);
  });
});

describe('answers follow the store', () => {
  const path = (name: string) =>
    `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${sel(`tokenscaler.dev/name=${name}`)}`;
  const value = (served: Served) =>
    (JSON.parse(served.body) as { items: Array<{ value: string }> }).items[0]?.value;

  it('serves a new decision as soon as it is published, and 404 once the scaler is removed', async () => {
    const store = new InMemoryDecisionStore();
    store.publish('inference', 'a', decision({ desiredReplicas: 3 }));
    const harness = await withFastPath(depsFor(store));
    try {
      expect(value(await call(harness.base, path('a'), { identity: 'hpa' }))).toBe('3');
      expect(value(await call(harness.base, path('a'), { identity: 'hpa' }))).toBe('3');
      store.publish('inference', 'a', decision({ desiredReplicas: 7 }));
      expect(value(await call(harness.base, path('a'), { identity: 'hpa' }))).toBe('7');
      // A change to another scaler leaves this answer as it was.
      store.publish('inference', 'b', decision({ desiredReplicas: 1 }));
      expect(value(await call(harness.base, path('a'), { identity: 'hpa' }))).toBe('7');
      expect(store.remove('inference', 'a')).toBe(true);
      expect((await call(harness.base, path('a'), { identity: 'hpa' })).status).toBe(404);
      expect(harness.fastAnswered.every(Boolean)).toBe(true);
    } finally {
      await harness.close();
    }
  });

  it('turns a cached 404 into 503 on register and into 200 on the first decision', async () => {
    const store = new InMemoryDecisionStore();
    const deps = depsFor(store);
    const harness = await withFastPath(deps);
    try {
      expect((await call(harness.base, path('late'), { identity: 'hpa' })).status).toBe(404);
      store.register('inference', 'late');
      expect((await call(harness.base, path('late'), { identity: 'hpa' })).status).toBe(503);
      // 503s are not kept: each is logged, as express logs each.
      expect((await call(harness.base, path('late'), { identity: 'hpa' })).status).toBe(503);
      expect(deps.logger.errors).toHaveLength(2);
      store.publish('inference', 'late', decision({ desiredReplicas: 2 }));
      expect(value(await call(harness.base, path('late'), { identity: 'hpa' }))).toBe('2');
    } finally {
      await harness.close();
    }
  });

  it('builds every answer afresh for a store without a version (even one that changes in place)', async () => {
    const a: { namespace: string; name: string; decision: PublishedScaler['decision'] } = {
      namespace: 'inference',
      name: 'a',
      decision: decision({ desiredReplicas: 3 }),
    };
    const scalers = new Map<string, PublishedScaler>([['a', a]]);
    const store: DecisionStore = {
      get: (ns, name) => (ns === 'inference' ? scalers.get(name) : undefined),
      list: (ns) => (ns === 'inference' || ns === undefined ? [...scalers.values()] : []),
      synced: () => true,
    };
    const harness = await withFastPath(depsFor(store));
    try {
      expect(value(await call(harness.base, path('a'), { identity: 'hpa' }))).toBe('3');
      scalers.set('a', { namespace: 'inference', name: 'a', decision: decision({ desiredReplicas: 9 }) });
      expect(value(await call(harness.base, path('a'), { identity: 'hpa' }))).toBe('9');
      a.decision = decision({ desiredReplicas: 4 });
      scalers.set('a', a);
      expect(value(await call(harness.base, path('a'), { identity: 'hpa' }))).toBe('4');
      a.decision = decision({ desiredReplicas: 6 });
      expect(value(await call(harness.base, path('a'), { identity: 'hpa' }))).toBe('6');
    } finally {
      await harness.close();
    }
  });

  it('stays correct with a route cache smaller than the URLs in use', async () => {
    const store = new InMemoryDecisionStore();
    for (let i = 0; i < 6; i++) store.publish('inference', `s${i}`, decision({ desiredReplicas: i + 1 }));
    const harness = await withFastPath(depsFor(store), 2);
    try {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 6; i++) {
          expect(value(await call(harness.base, path(`s${i}`), { identity: 'hpa' }))).toBe(String(i + 1));
        }
        store.publish('inference', 's0', decision({ desiredReplicas: 1 }));
      }
      expect(harness.fastAnswered.every(Boolean)).toBe(true);
    } finally {
      await harness.close();
    }
  });
});

describe('authorization and draining on the fast path', () => {
  const path = `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${sel('tokenscaler.dev/name=llama-70b')}`;
  const keda = '/keda/v1/namespaces/inference/tokenscalers/llama-70b';

  async function compare(overrides: Partial<Omit<ApiAppDeps, 'logger'>>, paths: string[]): Promise<Served[]> {
    const fastDeps = depsFor(sampleStore(), overrides);
    const plainDeps = depsFor(sampleStore(), overrides);
    const fast = await withFastPath(fastDeps);
    const plain = await expressOnly(plainDeps);
    try {
      const served: Served[] = [];
      for (const target of paths) {
        const viaFast = await call(fast.base, target, { identity: 'hpa' });
        expect(viaFast).toEqual(await call(plain.base, target, { identity: 'hpa' }));
        served.push(viaFast);
      }
      expect(fast.fastAnswered.every(Boolean)).toBe(true);
      expect(fastDeps.logger.errors).toEqual(plainDeps.logger.errors);
      return served;
    } finally {
      await fast.close();
      await plain.close();
    }
  }

  it('waits for an asynchronous authorizer and answers with its decision', async () => {
    const seen: string[] = [];
    const authorizer: Authorizer = {
      authorize: async (user, attributes): Promise<AuthorizationDecision> => {
        seen.push(
          `${attributes.kind}:${attributes.kind === 'resource' ? attributes.resource : attributes.path}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 1));
        return attributes.kind === 'resource'
          ? { allowed: true }
          : { allowed: false, reason: `${user.name} may not use KEDA` };
      },
    };
    const [allowed, denied] = await compare({ authorizer }, [path, keda]);
    expect(allowed?.status).toBe(200);
    expect(denied?.status).toBe(403);
    expect(JSON.parse(denied?.body ?? '')).toMatchObject({ details: {}, reason: 'Forbidden' });
    // Once per request on each server: the fast path never asks twice.
    expect(seen).toEqual([
      'resource:tokenscaler_desired_replicas',
      'resource:tokenscaler_desired_replicas',
      'non-resource:/keda/v1/namespaces/inference/tokenscalers/llama-70b',
      'non-resource:/keda/v1/namespaces/inference/tokenscalers/llama-70b',
    ]);
  });

  it('answers a failing authorizer (thrown or rejected) with the same logged 500', async () => {
    const thrown = await compare(
      {
        authorizer: {
          authorize: () => {
            throw new Error('authorizer exploded');
          },
        },
      },
      [path],
    );
    const rejected = await compare(
      { authorizer: { authorize: () => Promise.reject(new Error('webhook down')) } },
      [path],
    );
    for (const served of [...thrown, ...rejected]) expect(served.status).toBe(500);
  });

  it('asks clients to close the connection while draining', async () => {
    const [served] = await compare({ isDraining: () => true }, [path]);
    expect(served?.headers[0]).toBe('Connection: close');
  });
});

describe('Renderings', () => {
  it('serialises lists exactly as JSON.stringify of the generic answer, per entry', () => {
    const store = quirkyStore();
    const renderings = new Renderings();
    const inference = ['llama-70b', 'llama-8b'].map(
      (name) => store.get('inference', name) as PublishedScaler,
    );
    for (const metric of SERVED_METRICS) {
      for (const scalers of [inference.slice(0, 1), inference]) {
        const query = prepareExternalMetricQuery(
          'inference',
          metric.name,
          `tokenscaler.dev/name in (${scalers.map((scaler) => scaler.name).join(',')})`,
        );
        let generic: string | undefined;
        try {
          generic = JSON.stringify(answerExternalMetricQuery(store, query));
        } catch {
          generic = undefined;
        }
        expect(renderings.externalList(metric, scalers)).toBe(generic);
        const custom = prepareCustomMetricQuery({
          namespace: 'inference',
          resource: 'tokenscalers.tokenscaler.dev',
          name: scalers[0]?.name ?? '',
          metric: metric.name,
        });
        let genericCustom: string | undefined;
        try {
          genericCustom = JSON.stringify(answerCustomMetricQuery(store, custom));
        } catch {
          genericCustom = undefined;
        }
        expect(renderings.customList(metric, scalers.slice(0, 1))).toBe(genericCustom);
      }
    }
    const before = store.get('inference', 'llama-70b') as PublishedScaler;
    expect(renderings.keda(before)).toBe(JSON.stringify(queryKeda(store, 'inference', 'llama-70b')));
    store.publish('inference', 'llama-70b', decision({ desiredReplicas: 9 }));
    const after = store.get('inference', 'llama-70b') as PublishedScaler;
    expect(renderings.keda(after)).toBe(JSON.stringify(queryKeda(store, 'inference', 'llama-70b')));
    expect(renderings.keda(after)).not.toBe(renderings.keda(before));
    expect(renderings.keda(store.get('inference', 'new') as PublishedScaler)).toBeUndefined();
  });
});

describe('createApiRequestListener', () => {
  it('serves the polled reads and everything else from one listener', async () => {
    const deps = depsFor(sampleStore());
    const { server, base } = await listen(createApiRequestListener(deps));
    try {
      const metric = await call(
        base,
        `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${sel('tokenscaler.dev/name=llama-70b')}`,
        { identity: 'hpa' },
      );
      expect(metric.status).toBe(200);
      expect((await call(base, EXTERNAL, { identity: 'hpa' })).status).toBe(200);
      expect((await call(base, '/readyz')).body).toBe('ok');
    } finally {
      await stop(server);
    }
  });
});

describe('parseFastRoute', () => {
  it.each<[string, string | undefined]>([
    [`${EXTERNAL}/namespaces/ns/m?labelSelector=x`, 'external'],
    [`${CUSTOM}/namespaces/ns/r/n/m`, 'custom'],
    ['/keda/v1/namespaces/ns/tokenscalers/n', 'keda'],
    [`${EXTERNAL}/namespaces/ns/m/`, undefined],
    [`${EXTERNAL}/namespaces/ns%ZZ/m`, undefined],
    [`${EXTERNAL}/namespaces/n s/m`, undefined],
    [`${EXTERNAL}/namespaces/ns/m#x`, undefined],
    [`${CUSTOM}/namespaces/ns/r/n`, undefined],
    ['/keda/v1/namespaces/ns/tokenscalers', undefined],
    ['http://host/keda/v1/namespaces/ns/tokenscalers/n', undefined],
    ['/healthz', undefined],
  ])('%s -> %s', (url, label) => {
    expect(parseFastRoute(url)?.label).toBe(label);
  });

  it('derives the authorizer attributes from the raw path and decodes parameters', () => {
    const route = parseFastRoute(`${EXTERNAL}/namespaces/team%2Da/Tokenscaler%5Fdesired_replicas?x=1`);
    expect(route?.attributes).toEqual({
      kind: 'resource',
      verb: 'list',
      group: 'external.metrics.k8s.io',
      version: 'v1beta1',
      namespace: 'team-a',
      resource: 'Tokenscaler_desired_replicas',
    });
    expect(route?.pathname).toBe(`${EXTERNAL}/namespaces/team%2Da/Tokenscaler%5Fdesired_replicas`);
  });
});
