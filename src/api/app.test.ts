import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleStore } from '../../test/api-fixtures.ts';
import type { ApiLogger, Readiness } from './app.ts';
import { createApiApp } from './app.ts';
import type { AuthenticationResult } from './auth.ts';
import { authenticatedUsersAuthorizer } from './auth.ts';
import type { DecisionStore } from './decision-store.ts';
import { createApiMetrics } from './metrics.ts';

/**
 * The express app over plain HTTP with a stand-in authenticator keyed on a test header, so every
 * route, status and body can be checked without TLS (test/api-server.test.ts covers the real one).
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

let server: Server;
let base: string;
let readiness: Readiness = { ready: false, reason: 'no decisions yet' };
const logged: Array<{ message: string; fields?: Record<string, unknown> }> = [];
const warned: Array<{ message: string; fields?: Record<string, unknown> }> = [];
let clockMs = 1_000_000;
const registry = new Registry();

const logger: ApiLogger = {
  info: () => {},
  warn: (message, fields) => warned.push({ message, ...(fields === undefined ? {} : { fields }) }),
  error: (message, fields) => logged.push({ message, ...(fields === undefined ? {} : { fields }) }),
};

const store = sampleStore();
const failingStore: DecisionStore = {
  get: () => {
    throw new Error('store exploded');
  },
  list: () => {
    throw new Error('store exploded');
  },
  synced: () => true,
};

beforeAll(async () => {
  const app = createApiApp({
    store: {
      get: (ns, name) => (ns === 'boom' ? failingStore.get(ns, name) : store.get(ns, name)),
      list: (ns) => (ns === 'boom' ? failingStore.list(ns) : store.list(ns)),
      synced: () => store.synced(),
    },
    authenticate: (request) =>
      USERS[String(request.headers['x-test-identity'])] ?? {
        ok: false,
        message: 'no client certificate was presented',
      },
    authorizer: authenticatedUsersAuthorizer,
    readiness: () => readiness,
    logger,
    metrics: createApiMetrics(registry),
    nowMs: () => clockMs,
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function get(path: string, identity?: string, init: RequestInit = {}) {
  const response = await fetch(`${base}${path}`, {
    ...init,
    headers: { ...(identity === undefined ? {} : { 'x-test-identity': identity }), ...init.headers },
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  return {
    status: response.status,
    type,
    headers: response.headers,
    text,
    json: type.includes('json') ? JSON.parse(text) : undefined,
  };
}

const EXTERNAL = '/apis/external.metrics.k8s.io/v1beta1';

describe('health endpoints', () => {
  it('are open and plain text; /readyz follows readiness', async () => {
    for (const path of ['/healthz', '/livez']) {
      expect(await get(path)).toMatchObject({ status: 200, text: 'ok' });
    }
    readiness = { ready: false, reason: 'no decisions yet' };
    expect(await get('/readyz')).toMatchObject({ status: 503, text: 'not ready: no decisions yet\n' });
    readiness = { ready: true };
    expect(await get('/readyz')).toMatchObject({ status: 200, text: 'ok' });
  });
});

describe('authentication and authorization', () => {
  it('answers 401 with a Status body to an unauthenticated caller, on every API path', async () => {
    for (const path of [
      '/apis',
      EXTERNAL,
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas`,
      '/nope',
    ]) {
      const response = await get(path);
      expect(response.status).toBe(401);
      expect(response.type).toMatch(/^application\/json/);
      expect(response.json).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'Unauthorized: no client certificate was presented',
        reason: 'Unauthorized',
        code: 401,
      });
    }
  });

  it('logs each rejection reason once a minute, not once a request', async () => {
    warned.length = 0;
    clockMs += 120_000;
    await get('/apis');
    await get('/apis');
    await get('/apis', 'unknown-identity');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({
      message: 'metrics API request rejected (401)',
      fields: { reason: 'no client certificate was presented', path: '/apis' },
    });
    clockMs += 61_000;
    await get('/apis');
    expect(warned).toHaveLength(2);
  });

  it('answers 403 in kube-apiserver wording to an anonymous user', async () => {
    const response = await get(`${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas`, 'anonymous');
    expect(response.status).toBe(403);
    expect(response.json).toMatchObject({
      reason: 'Forbidden',
      code: 403,
      details: { group: 'external.metrics.k8s.io', kind: 'tokenscaler_desired_replicas' },
    });
    expect(response.json.message).toMatch(
      /^tokenscaler_desired_replicas.external.metrics.k8s.io is forbidden: User "system:anonymous" cannot list/,
    );
  });
});

describe('routes', () => {
  it('serves discovery documents as JSON', async () => {
    const external = await get(EXTERNAL, 'hpa');
    expect(external.status).toBe(200);
    expect(external.json.resources).toHaveLength(4);
    expect((await get('/apis/custom.metrics.k8s.io/v1beta2', 'hpa')).json.groupVersion).toBe(
      'custom.metrics.k8s.io/v1beta2',
    );
    expect((await get('/apis/external.metrics.k8s.io', 'hpa')).json).toMatchObject({ kind: 'APIGroup' });
    expect((await get('/apis', 'hpa')).json).toMatchObject({ kind: 'APIGroupList' });
  });

  it('answers JSON even when the client prefers protobuf (kube-controller-manager does)', async () => {
    const response = await get(EXTERNAL, 'hpa', {
      headers: { accept: 'application/vnd.kubernetes.protobuf, */*' },
    });
    expect(response.status).toBe(200);
    expect(response.type).toMatch(/^application\/json/);
  });

  it('decodes the selector as the aggregator encodes it (+ for space, %2C for comma)', async () => {
    const response = await get(
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?labelSelector=tokenscaler.dev%2Fname+in+%28llama-70b%2Cllama-8b%29`,
      'hpa',
    );
    expect(response.status).toBe(200);
    expect(response.json.items.map((item: { value: string }) => item.value)).toEqual(['3', '5']);
  });

  it('decodes percent-encoded path segments and matches metric names case-insensitively', async () => {
    const response = await get(
      `${EXTERNAL}/namespaces/inference/TokenScaler%5FDesired%5FReplicas?labelSelector=tokenscaler.dev%2Fname%3Dllama-70b`,
      'hpa',
    );
    expect(response.status).toBe(200);
    expect(response.json.items[0].metricName).toBe('tokenscaler_desired_replicas');
  });

  it('serves custom Object metrics and the KEDA endpoint', async () => {
    const custom = await get(
      '/apis/custom.metrics.k8s.io/v1beta2/namespaces/inference/tokenscalers.tokenscaler.dev/llama-70b/tokenscaler_desired_replicas',
      'hpa',
    );
    expect(custom.status).toBe(200);
    expect(custom.json.items).toHaveLength(1);
    const keda = await get('/keda/v1/namespaces/inference/tokenscalers/llama-70b', 'hpa');
    expect(keda.json).toMatchObject({ desiredReplicas: 3, demandTokens: 250_000 });
  });

  it.each([
    [
      `${EXTERNAL}/namespaces/inference/unknown?labelSelector=tokenscaler.dev%2Fname%3Dllama-70b`,
      404,
      'NotFound',
    ],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?labelSelector=tokenscaler.dev%2Fname%3Dnew`,
      503,
      'ServiceUnavailable',
    ],
    [`${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?labelSelector=a+in`, 400, 'BadRequest'],
    [`${EXTERNAL}/namespaces/inference/%E0%A4%A`, 400, 'BadRequest'],
    ['/openapi/v2', 404, 'NotFound'],
    ['/openapi/v3', 404, 'NotFound'],
    ['/APIS/external.metrics.k8s.io/v1beta1', 404, 'NotFound'],
    ['/api', 404, 'NotFound'],
  ])('%s -> %d %s', async (path, code, reason) => {
    const response = await get(path, 'hpa');
    expect(response.status).toBe(code);
    expect(response.json).toMatchObject({ kind: 'Status', status: 'Failure', code, reason });
  });

  it('refuses writes with 405 and an Allow header', async () => {
    const response = await get(EXTERNAL, 'hpa', { method: 'POST', body: '{}' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    expect(response.json).toMatchObject({ reason: 'MethodNotAllowed' });
  });

  it('turns an unexpected failure into a 500 that leaks nothing, and logs it', async () => {
    const response = await get(`${EXTERNAL}/namespaces/boom/tokenscaler_desired_replicas`, 'hpa');
    expect(response.status).toBe(500);
    expect(response.json).toMatchObject({
      reason: 'InternalError',
      message: 'Internal error occurred: unable to fetch metrics',
    });
    expect(logged.at(-1)?.message).toBe('metrics API request failed');
  });

  it('counts requests by bounded route and code', async () => {
    await get('/healthz');
    const text = await registry.metrics();
    expect(text).toMatch(/tokenscaler_api_requests_total\{route="health",code="200"\} \d+/);
    expect(text).toMatch(/tokenscaler_api_requests_total\{route="unauthenticated",code="401"\} \d+/);
    expect(text).toMatch(/tokenscaler_api_requests_total\{route="external",code="503"\} \d+/);
  });
});
