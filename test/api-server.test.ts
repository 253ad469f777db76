/**
 * The metrics API server over real HTTPS, with a PKI made by the real `openssl` CLI, called the way
 * its clients call it:
 * - kube-apiserver's aggregator: the front-proxy client certificate plus X-Remote-User/-Group
 *   (availability probe as system:kube-aggregator, HPA reads as the HPA's service account);
 * - kubectl: a certificate from the --client-ca-file CA;
 * - anonymous callers and certificates from the wrong CA, CN or usage: 401 Status bodies.
 * The HPA side of the contract is checked by feeding served quantities to core/hpa (V-vectors of
 * reference/external-metrics-contract.md §5.7). Certificates and CAs are rotated on disk while the
 * server runs.
 */
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiLogger } from '../src/api/app.ts';
import { DEFAULT_REQUEST_HEADER_CONFIG } from '../src/api/auth.ts';
import { clusterMaterialSource } from '../src/api/cluster-authentication.ts';
import { InMemoryDecisionStore } from '../src/api/decision-store.ts';
import type { ApiServerOptions, RunningApiServer } from '../src/api/server.ts';
import { DEFAULT_API_SERVER_OPTIONS, startApiServer } from '../src/api/server.ts';
import type { HpaSpec } from '../src/core/hpa.ts';
import { initialHpaState, quantityMilliValue, reconcileHpa } from '../src/core/hpa.ts';
import { decision } from './api-fixtures.ts';
import type { IssuedCertificate } from './support/certs.ts';
import { TestPki } from './support/certs.ts';

const SERVICE_NAME = 'tokenscaler.tokenscaler.svc';
const EXTERNAL = '/apis/external.metrics.k8s.io/v1beta1';
const AGGREGATOR = { 'X-Remote-User': 'system:kube-aggregator', 'X-Remote-Group': 'system:masters' };
const HPA = {
  'X-Remote-User': 'system:serviceaccount:kube-system:horizontal-pod-autoscaler',
  'X-Remote-Group': ['system:serviceaccounts', 'system:serviceaccounts:kube-system'],
};

interface Certs {
  servingCa: IssuedCertificate;
  serving: IssuedCertificate;
  servingRotated: IssuedCertificate;
  frontProxyCa: IssuedCertificate;
  frontProxyClient: IssuedCertificate;
  intruder: IssuedCertificate;
  serverOnly: IssuedCertificate;
  clientCa: IssuedCertificate;
  alice: IssuedCertificate;
  rogueCa: IssuedCertificate;
  rogueFrontProxy: IssuedCertificate;
  newFrontProxyCa: IssuedCertificate;
  newFrontProxyClient: IssuedCertificate;
}

let pki: TestPki;
let certs: Certs;
const files = { certFile: '', keyFile: '', requestHeaderCaFile: '', clientCaFile: '' };
const logs: Array<{ level: string; message: string; fields?: Record<string, unknown> }> = [];
const logger: ApiLogger = {
  info: (message, fields) => logs.push({ level: 'info', message, ...(fields ? { fields } : {}) }),
  warn: (message, fields) => logs.push({ level: 'warn', message, ...(fields ? { fields } : {}) }),
  error: (message, fields) => logs.push({ level: 'error', message, ...(fields ? { fields } : {}) }),
};
const store = new InMemoryDecisionStore();
let server: RunningApiServer;

beforeAll(async () => {
  pki = await TestPki.create('tokenscaler-api-');
  const [servingCa, frontProxyCa, clientCa, rogueCa, newFrontProxyCa] = await Promise.all([
    pki.createCa('serving-ca'),
    pki.createCa('front-proxy-ca'),
    pki.createCa('client-ca'),
    // Same subject as the real front-proxy CA: only the signature tells them apart.
    pki.createCa('rogue-ca', 'front-proxy-ca-ca'),
    pki.createCa('new-front-proxy-ca'),
  ]);
  const client = (
    issuer: IssuedCertificate,
    name: string,
    commonName: string,
    organizations: string[] = [],
  ) => pki.issue(issuer, { name, commonName, organizations, usage: 'client' });
  const [
    serving,
    servingRotated,
    frontProxyClient,
    intruder,
    serverOnly,
    alice,
    rogueFrontProxy,
    newFrontProxyClient,
  ] = await Promise.all([
    pki.issueServing(servingCa, 'serving'),
    pki.issueServing(servingCa, 'serving-rotated'),
    client(frontProxyCa, 'front-proxy-client', 'front-proxy-client'),
    client(frontProxyCa, 'intruder', 'intruder'),
    pki.issue(frontProxyCa, { name: 'server-only', commonName: 'front-proxy-client', usage: 'server' }),
    client(clientCa, 'alice', 'alice', ['developers']),
    client(rogueCa, 'rogue-front-proxy', 'front-proxy-client'),
    client(newFrontProxyCa, 'new-front-proxy-client', 'front-proxy-client'),
  ]);
  certs = {
    servingCa,
    serving,
    servingRotated,
    frontProxyCa,
    frontProxyClient,
    intruder,
    serverOnly,
    clientCa,
    alice,
    rogueCa,
    rogueFrontProxy,
    newFrontProxyCa,
    newFrontProxyClient,
  };
  // The files the server watches: copies, so tests can rotate them in place.
  files.certFile = pki.path('tls.crt');
  files.keyFile = pki.path('tls.key');
  files.requestHeaderCaFile = pki.path('requestheader-client-ca.crt');
  files.clientCaFile = pki.path('client-ca-file.crt');
  await Promise.all([
    copyFile(serving.certPath, files.certFile),
    copyFile(serving.keyPath, files.keyFile),
    copyFile(frontProxyCa.certPath, files.requestHeaderCaFile),
    copyFile(clientCa.certPath, files.clientCaFile),
  ]);

  store.publish('inference', 'llama-70b', decision({ desiredReplicas: 12, demandTokens: 1.1 * 3 }));
  store.publish('inference', 'shard-a', decision({ desiredReplicas: 3, demandTokens: 300 }));
  store.publish('inference', 'shard-b', decision({ desiredReplicas: 4, demandTokens: 450 }));
  store.publish('inference', 'shard-c', decision({ desiredReplicas: 5, demandTokens: 500 }));
  store.register('inference', 'warming-up');

  server = await startApiServer(options(), { store, logger });
});

afterAll(async () => {
  await server?.close();
  await pki?.dispose();
});

function options(overrides: Partial<ApiServerOptions> = {}): ApiServerOptions {
  return {
    ...DEFAULT_API_SERVER_OPTIONS,
    bindAddress: '127.0.0.1',
    port: 0,
    tls: { ...files },
    requestHeader: { ...DEFAULT_REQUEST_HEADER_CONFIG, allowedNames: ['front-proxy-client'] },
    // Reloads are triggered by hand unless a test asks for the timer.
    reloadIntervalSeconds: 0,
    drainTimeoutSeconds: 5,
    ...overrides,
  };
}

interface Reply {
  status: number;
  body: string;
  // biome-ignore lint/suspicious/noExplicitAny: test-side JSON bodies are checked field by field.
  json: any;
  servedCertificateFingerprint?: string;
}

/** One HTTPS request on a fresh connection (no agent: identities must not share sockets). */
function call(
  target: RunningApiServer,
  path: string,
  as: { cert?: IssuedCertificate; headers?: Record<string, string | string[]> } = {},
): Promise<Reply> {
  const url = new URL(target.url);
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: 'GET',
        agent: false,
        // kube-aggregator verifies the serving certificate for <service>.<namespace>.svc.
        servername: SERVICE_NAME,
        ca: certs.servingCa.certPem,
        ...(as.cert === undefined ? {} : { cert: as.cert.certPem, key: as.cert.keyPem }),
        headers: { accept: 'application/json, */*', ...as.headers },
        timeout: 5000,
      },
      (response) => {
        const socket = response.socket as TLSSocket;
        const fingerprint = socket.getPeerCertificate().fingerprint256;
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const isJson = (response.headers['content-type'] ?? '').includes('json');
          resolve({
            status: response.statusCode ?? 0,
            body,
            json: isJson ? JSON.parse(body) : undefined,
            servedCertificateFingerprint: fingerprint,
          });
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error(`request to ${path} timed out`)));
    request.on('error', reject);
    request.end();
  });
}

/** Reads one HTTP/1.1 response with a Content-Length body from a raw socket. */
function readResponse(socket: TLSSocket): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const headerEnd = buffered.indexOf('\r\n\r\n');
      if (headerEnd === -1) return;
      const head = buffered.subarray(0, headerEnd).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < headerEnd + 4 + length) return;
      socket.off('data', onData);
      socket.off('error', reject);
      resolve({
        status: Number(head.split(' ')[1]),
        body: buffered.subarray(headerEnd + 4, headerEnd + 4 + length).toString('utf8'),
      });
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

function fingerprintOf(certificate: IssuedCertificate): string {
  return new X509Certificate(certificate.certPem).fingerprint256;
}

const selector = (name: string) => `labelSelector=${encodeURIComponent(`tokenscaler.dev/name=${name}`)}`;

describe('as kube-apiserver calls it (front proxy)', () => {
  it('passes the APIService availability check', async () => {
    const reply = await call(server, EXTERNAL, { cert: certs.frontProxyClient, headers: AGGREGATOR });
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({
      kind: 'APIResourceList',
      groupVersion: 'external.metrics.k8s.io/v1beta1',
    });
    expect(reply.json.resources.length).toBeGreaterThan(0);
  });

  it('serves the HPA its metric', async () => {
    const reply = await call(
      server,
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${selector('llama-70b')}`,
      {
        cert: certs.frontProxyClient,
        headers: HPA,
      },
    );
    expect(reply.status).toBe(200);
    expect(reply.json.items).toEqual([
      {
        metricName: 'tokenscaler_desired_replicas',
        metricLabels: { 'tokenscaler.dev/name': 'llama-70b' },
        timestamp: '2026-08-21T10:00:00Z',
        value: '12',
      },
    ]);
  });

  it('answers 503 for a scaler without a decision and 404 for an unknown one, as Status bodies', async () => {
    const pending = await call(
      server,
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${selector('warming-up')}`,
      {
        cert: certs.frontProxyClient,
        headers: HPA,
      },
    );
    expect(pending.status).toBe(503);
    expect(pending.json).toMatchObject({ kind: 'Status', reason: 'ServiceUnavailable' });
    const unknown = await call(
      server,
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?${selector('nope')}`,
      {
        cert: certs.frontProxyClient,
        headers: HPA,
      },
    );
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ kind: 'Status', reason: 'NotFound' });
  });

  it('forbids an anonymous user forwarded by the proxy (403)', async () => {
    const reply = await call(server, EXTERNAL, {
      cert: certs.frontProxyClient,
      headers: { 'X-Remote-User': 'system:anonymous', 'X-Remote-Group': 'system:unauthenticated' },
    });
    expect(reply.status).toBe(403);
    expect(reply.json).toMatchObject({ reason: 'Forbidden', code: 403 });
  });

  it.each<[string, () => IssuedCertificate | undefined, Record<string, string>, RegExp]>([
    [
      'no certificate, even with identity headers',
      () => undefined,
      AGGREGATOR,
      /no client certificate was presented/,
    ],
    [
      'a front-proxy CA certificate with a CN that is not allowed',
      () => certs.intruder,
      AGGREGATOR,
      /CN "intruder" is not one of --requestheader-allowed-names/,
    ],
    [
      'a look-alike certificate from another CA',
      () => certs.rogueFrontProxy,
      AGGREGATOR,
      /the client certificate was rejected/,
    ],
    [
      'a front-proxy certificate made for servers, not clients',
      () => certs.serverOnly,
      AGGREGATOR,
      /the client certificate was rejected \(.*purpose/i,
    ],
    [
      'the front-proxy certificate without a user header',
      () => certs.frontProxyClient,
      { 'X-Remote-Group': 'system:masters' },
      /carries no user/,
    ],
  ])('rejects %s with 401', async (_name, cert, headers, message) => {
    const presented = cert();
    const reply = await call(server, EXTERNAL, { ...(presented ? { cert: presented } : {}), headers });
    expect(reply.status).toBe(401);
    expect(reply.json).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Unauthorized',
      code: 401,
    });
    expect(reply.json.message).toMatch(message);
  });
});

describe('as kubectl calls it (client CA)', () => {
  it('authenticates a client-CA certificate as its CN and ignores identity headers on it', async () => {
    const plain = await call(server, `/keda/v1/namespaces/inference/tokenscalers/llama-70b`, {
      cert: certs.alice,
    });
    expect(plain.status).toBe(200);
    expect(plain.json.desiredReplicas).toBe(12);
    // Claiming to be anonymous would be forbidden if the claim were read: it must not be.
    const spoofed = await call(server, EXTERNAL, {
      cert: certs.alice,
      headers: { 'X-Remote-User': 'system:anonymous', 'X-Remote-Group': 'system:unauthenticated' },
    });
    expect(spoofed.status).toBe(200);
  });
});

describe('health endpoints', () => {
  it('are open without a certificate; /readyz waits for the first decisions', async () => {
    expect((await call(server, '/healthz')).status).toBe(200);
    expect((await call(server, '/livez')).body).toBe('ok');
    const before = await call(server, '/readyz');
    expect(before.status).toBe(503);
    expect(before.body).toMatch(/no decisions yet/);
    store.markSynced();
    expect((await call(server, '/readyz')).status).toBe(200);
  });
});

describe('the HPA arithmetic on served values (contract §5.7)', () => {
  /** What the HPA would do with the served items: read MilliValue of each and reconcile. */
  async function hpaReplicas(metric: string, labelSelector: string, spec: HpaSpec, currentReplicas: number) {
    const reply = await call(
      server,
      `${EXTERNAL}/namespaces/inference/${metric}?labelSelector=${encodeURIComponent(labelSelector)}`,
      {
        cert: certs.frontProxyClient,
        headers: HPA,
      },
    );
    expect(reply.status).toBe(200);
    const valuesMilli = (reply.json.items as Array<{ value: string }>).map((item) =>
      quantityMilliValue(item.value),
    );
    const result = reconcileHpa(
      spec,
      {
        specReplicas: currentReplicas,
        statusReplicas: currentReplicas,
        readings: [{ kind: 'values', valuesMilli }],
      },
      initialHpaState(),
      0,
    );
    return {
      values: reply.json.items.map((item: { value: string }) => item.value),
      replicas: result.desiredReplicas,
    };
  }
  const target = (metric: string, averageValue: string): HpaSpec => ({
    maxReplicas: 100,
    metrics: [
      {
        type: 'External',
        name: metric,
        target: { type: 'AverageValue', averageValueMilli: quantityMilliValue(averageValue) },
      },
    ],
  });

  it('desired-replicas pattern (AverageValue 1): 12 served to an HPA at 10 scales to 12 (V4)', async () => {
    const result = await hpaReplicas(
      'tokenscaler_desired_replicas',
      'tokenscaler.dev/name=llama-70b',
      target('d', '1'),
      10,
    );
    expect(result).toEqual({ values: ['12'], replicas: 12 });
  });

  it('desired-replicas pattern inside the tolerance band holds (V3: 11 over 10)', async () => {
    // 12 over 11 replicas is 1.09, inside [0.9, 1.1]: the HPA keeps 11.
    const result = await hpaReplicas(
      'tokenscaler_desired_replicas',
      'tokenscaler.dev/name=llama-70b',
      target('d', '1'),
      11,
    );
    expect(result.replicas).toBe(11);
  });

  it('items matched by one selector are summed (V2: 300 + 450 + 500 over AverageValue 100)', async () => {
    const result = await hpaReplicas(
      'tokenscaler_demand_tokens',
      'tokenscaler.dev/name in (shard-a,shard-b,shard-c)',
      target('demand', '100'),
      10,
    );
    expect(result).toEqual({ values: ['300', '450', '500'], replicas: 13 });
  });

  it('a float demand of 1.1 x 3 is served as 3300m and stays inside the band at 3 replicas (V20)', async () => {
    const result = await hpaReplicas(
      'tokenscaler_demand_tokens',
      'tokenscaler.dev/name=llama-70b',
      target('demand', '1'),
      3,
    );
    expect(result).toEqual({ values: ['3300m'], replicas: 3 });
    // What String() would have served moves the HPA to 4: the artefact the emitter avoids.
    expect(quantityMilliValue(String(1.1 * 3))).toBe(3301);
  });
});

describe('certificate and CA reload', () => {
  it('serves a rotated certificate to new connections, once, and keeps the old one on a broken rotation', async () => {
    const before = await call(server, '/healthz');
    expect(before.servedCertificateFingerprint).toBe(fingerprintOf(certs.serving));

    await copyFile(certs.servingRotated.keyPath, files.keyFile);
    await copyFile(certs.servingRotated.certPath, files.certFile);
    expect(await server.reload()).toBe(true);
    expect(await server.reload()).toBe(false);
    expect((await call(server, '/healthz')).servedCertificateFingerprint).toBe(
      fingerprintOf(certs.servingRotated),
    );

    // Half-written rotation: the key no longer matches. Keep serving, say so.
    await writeFile(files.keyFile, certs.serving.keyPem);
    expect(await server.reload()).toBe(false);
    expect(
      logs.some((log) => log.level === 'error' && log.message.includes('cannot reload serving material')),
    ).toBe(true);
    expect((await call(server, '/healthz')).servedCertificateFingerprint).toBe(
      fingerprintOf(certs.servingRotated),
    );
    await writeFile(files.keyFile, certs.servingRotated.keyPem);
  });

  it('trusts a rotated front-proxy CA at once, and stops trusting the old one', async () => {
    const read = (cert: IssuedCertificate) => call(server, EXTERNAL, { cert, headers: AGGREGATOR });
    expect((await read(certs.frontProxyClient)).status).toBe(200);
    expect((await read(certs.newFrontProxyClient)).status).toBe(401);
    await copyFile(certs.newFrontProxyCa.certPath, files.requestHeaderCaFile);
    expect(await server.reload()).toBe(true);
    expect((await read(certs.newFrontProxyClient)).status).toBe(200);
    expect((await read(certs.frontProxyClient)).status).toBe(401);
    // kubectl's CA was untouched.
    expect((await call(server, EXTERNAL, { cert: certs.alice })).status).toBe(200);
  });

  it('stops trusting a removed CA on a connection opened before the rotation', async () => {
    const caFile = pki.path('keepalive-front-proxy-ca.crt');
    await copyFile(certs.frontProxyCa.certPath, caFile);
    // One CA file only: the case where a verified handshake alone decides which CA issued a chain.
    const target = await startApiServer(
      options({ tls: { certFile: files.certFile, keyFile: files.keyFile, requestHeaderCaFile: caFile } }),
      { store, logger },
    );
    const url = new URL(target.url);
    const socket = connectTls({
      host: url.hostname,
      port: Number(url.port),
      servername: SERVICE_NAME,
      ca: certs.servingCa.certPem,
      cert: certs.frontProxyClient.certPem,
      key: certs.frontProxyClient.keyPem,
    });
    try {
      await once(socket, 'secureConnect');
      const head = `GET ${EXTERNAL} HTTP/1.1\r\nHost: ${SERVICE_NAME}\r\nX-Remote-User: system:kube-aggregator\r\n`;
      socket.write(`${head}\r\n`);
      expect((await readResponse(socket)).status).toBe(200);
      // The next request is half sent (headers unfinished) while the CA is rotated, so the
      // connection is busy, not idle, and stays open across the reload.
      socket.write(head);
      await copyFile(certs.newFrontProxyCa.certPath, caFile);
      expect(await target.reload()).toBe(true);
      socket.write('\r\n');
      const second = await readResponse(socket);
      expect(second.status).toBe(401);
      expect(second.body).toContain('verified against CAs that have since been rotated');
    } finally {
      socket.destroy();
      await target.close();
    }
  });

  it('picks up rotated files on its own timer', async () => {
    await copyFile(certs.serving.certPath, pki.path('timer.crt'));
    await copyFile(certs.serving.keyPath, pki.path('timer.key'));
    const timed = await startApiServer(
      options({
        tls: { ...files, certFile: pki.path('timer.crt'), keyFile: pki.path('timer.key') },
        reloadIntervalSeconds: 0.1,
      }),
      { store, logger },
    );
    try {
      await copyFile(certs.servingRotated.keyPath, pki.path('timer.key'));
      await copyFile(certs.servingRotated.certPath, pki.path('timer.crt'));
      let served: string | undefined;
      for (let attempt = 0; attempt < 50 && served !== fingerprintOf(certs.servingRotated); attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        served = (await call(timed, '/healthz')).servedCertificateFingerprint;
      }
      expect(served).toBe(fingerprintOf(certs.servingRotated));
    } finally {
      await timed.close();
    }
  });
});

describe('front-proxy certificates signed by an intermediate CA', () => {
  let intermediate: IssuedCertificate;
  let leafWithChain: IssuedCertificate;

  beforeAll(async () => {
    intermediate = await pki.issue(certs.frontProxyCa, {
      name: 'front-proxy-intermediate',
      commonName: 'front-proxy-intermediate',
      usage: 'none',
      ca: true,
    });
    const leaf = await pki.issue(intermediate, {
      name: 'front-proxy-via-intermediate',
      commonName: 'front-proxy-client',
      usage: 'client',
    });
    // The client sends its chain, as kube-apiserver does with a bundled --proxy-client-cert-file.
    leafWithChain = { ...leaf, certPem: `${leaf.certPem}${intermediate.certPem}` };
  });

  async function withServer(tls: Partial<typeof files>, check: (target: RunningApiServer) => Promise<void>) {
    const target = await startApiServer(
      options({ tls: { certFile: files.certFile, keyFile: files.keyFile, ...tls } }),
      {
        store,
        logger,
      },
    );
    try {
      await check(target);
    } finally {
      await target.close();
    }
  }

  it('are told apart from client-CA certificates when the CA file bundles the intermediate with its root', async () => {
    const bundle = pki.path('front-proxy-bundle.crt');
    await writeFile(bundle, `${certs.frontProxyCa.certPem}${intermediate.certPem}`);
    await withServer(
      { requestHeaderCaFile: bundle, clientCaFile: certs.clientCa.certPath },
      async (target) => {
        expect((await call(target, EXTERNAL, { cert: leafWithChain, headers: AGGREGATOR })).status).toBe(200);
        expect((await call(target, EXTERNAL, { cert: certs.alice })).status).toBe(200);
      },
    );
  });

  it('are accepted through the presented intermediate when the CA file holds the root', async () => {
    await withServer({ requestHeaderCaFile: certs.frontProxyCa.certPath }, async (target) => {
      expect((await call(target, EXTERNAL, { cert: leafWithChain, headers: AGGREGATOR })).status).toBe(200);
      // The same leaf without its intermediate cannot be verified.
      const bare = {
        ...leafWithChain,
        certPem: leafWithChain.certPem.slice(0, leafWithChain.certPem.indexOf(intermediate.certPem)),
      };
      expect((await call(target, EXTERNAL, { cert: bare, headers: AGGREGATOR })).status).toBe(401);
    });
  });
});

describe('CAs from the extension-apiserver-authentication ConfigMap', () => {
  it('authenticates with the ConfigMap CA and headers, and follows its rotation', async () => {
    let data: Record<string, string> = {
      'requestheader-client-ca-file': certs.frontProxyCa.certPem,
      'requestheader-allowed-names': '["front-proxy-client"]',
      'requestheader-username-headers': '["X-Forwarded-User"]',
      'requestheader-group-headers': '["X-Forwarded-Group"]',
      'requestheader-extra-headers-prefix': '["X-Forwarded-Extra-"]',
    };
    const target = await startApiServer(options({ tls: undefined }), {
      store,
      logger,
      material: clusterMaterialSource({ certFile: files.certFile, keyFile: files.keyFile }, async () => data),
    });
    try {
      const asProxy = (cert: IssuedCertificate, headers: Record<string, string>) =>
        call(target, EXTERNAL, { cert, headers });
      expect(
        (await asProxy(certs.frontProxyClient, { 'X-Forwarded-User': 'system:kube-aggregator' })).status,
      ).toBe(200);
      const wrongHeader = await asProxy(certs.frontProxyClient, AGGREGATOR);
      expect(wrongHeader.status).toBe(401);
      expect(wrongHeader.json.message).toMatch(/carries no user \(x-forwarded-user\)/);

      data = { ...data, 'requestheader-client-ca-file': certs.newFrontProxyCa.certPem };
      expect(await target.reload()).toBe(true);
      expect((await asProxy(certs.newFrontProxyClient, { 'X-Forwarded-User': 'u' })).status).toBe(200);
      expect((await asProxy(certs.frontProxyClient, { 'X-Forwarded-User': 'u' })).status).toBe(401);
    } finally {
      await target.close();
    }
  });
});

describe('lifecycle', () => {
  it('refuses to start on a port in use, with a coded error', async () => {
    await expect(startApiServer(options({ port: server.port }), { store, logger })).rejects.toMatchObject({
      code: 'API_LISTEN_FAILED',
      message: expect.stringContaining(`127.0.0.1:${server.port}`),
    });
  });

  it('refuses to start without a client CA', async () => {
    await expect(
      startApiServer(options({ tls: { certFile: files.certFile, keyFile: files.keyFile } }), {
        store,
        logger,
      }),
    ).rejects.toThrow(/--requestheader-client-ca-file: or --client-ca-file is required/);
  });

  it('drains: /readyz fails during the shutdown delay while requests are still served, then the port closes', async () => {
    const draining = await startApiServer(options({ shutdownDelaySeconds: 0.5 }), { store, logger });
    const closed = draining.close();
    const during = await call(draining, '/readyz');
    expect(during.status).toBe(503);
    expect(during.body).toMatch(/shutting down/);
    expect((await call(draining, EXTERNAL, { cert: certs.alice })).status).toBe(200);
    await closed;
    await expect(call(draining, '/healthz')).rejects.toThrow(/ECONNREFUSED/);
    // close() is idempotent.
    await draining.close();
  });

  it('--insecure-serving: plain HTTP, no authentication, loudly logged', async () => {
    const insecure = await startApiServer(
      { ...options(), insecureServing: true, tls: undefined },
      { store, logger },
    );
    try {
      expect(insecure.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(logs.some((log) => log.level === 'warn' && log.message.startsWith('INSECURE SERVING'))).toBe(
        true,
      );
      const body = await new Promise<string>((resolve, reject) => {
        const url = new URL(`${insecure.url}${EXTERNAL}`);
        httpRequest(
          { host: url.hostname, port: url.port, path: url.pathname, agent: false, timeout: 5000 },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () =>
              resolve(`${response.statusCode} ${Buffer.concat(chunks).toString('utf8')}`),
            );
          },
        )
          .on('error', reject)
          .end();
      });
      expect(body).toMatch(/^200 \{"kind":"APIResourceList"/);
    } finally {
      await insecure.close();
    }
  });
});
