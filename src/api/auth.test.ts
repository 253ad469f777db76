import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCertificate } from '../../test/support/certs.ts';
import { TestPki } from '../../test/support/certs.ts';
import type { AuthenticationSettings, PeerCertificates, PeerClass, UserInfo } from './auth.ts';
import {
  authenticatedUsersAuthorizer,
  authenticateRequest,
  classifyPeer,
  DEFAULT_REQUEST_HEADER_CONFIG,
  forbiddenMessage,
  identityHeadersOf,
  isIdentityHeader,
  requestAttributes,
  stripIdentityHeaders,
  TrustAnchors,
} from './auth.ts';

interface Pki {
  frontProxyCa: IssuedCertificate;
  intermediate: IssuedCertificate;
  clientCa: IssuedCertificate;
  rogueCa: IssuedCertificate;
  frontProxyClient: IssuedCertificate;
  viaIntermediate: IssuedCertificate;
  alice: IssuedCertificate;
  noCommonName: IssuedCertificate;
}

let pki: TestPki;
let certs: Pki;

beforeAll(async () => {
  pki = await TestPki.create();
  const [frontProxyCa, clientCa, rogueCa] = await Promise.all([
    pki.createCa('front-proxy-ca'),
    pki.createCa('client-ca'),
    pki.createCa('rogue-ca'),
  ]);
  const intermediate = await pki.issue(frontProxyCa, {
    name: 'intermediate',
    commonName: 'front-proxy-intermediate',
    usage: 'none',
    ca: true,
  });
  const [frontProxyClient, viaIntermediate, alice, noCommonName] = await Promise.all([
    pki.issue(frontProxyCa, {
      name: 'front-proxy-client',
      commonName: 'front-proxy-client',
      usage: 'client',
    }),
    pki.issue(intermediate, { name: 'via-intermediate', commonName: 'front-proxy-client', usage: 'client' }),
    pki.issue(clientCa, {
      name: 'alice',
      commonName: 'alice',
      organizations: ['dev', 'ops'],
      usage: 'client',
    }),
    pki.issue(clientCa, { name: 'no-cn', commonName: '', usage: 'client' }),
  ]);
  certs = {
    frontProxyCa,
    intermediate,
    clientCa,
    rogueCa,
    frontProxyClient,
    viaIntermediate,
    alice,
    noCommonName,
  };
});

afterAll(async () => {
  await pki?.dispose();
});

const x509 = (certificate: IssuedCertificate) => new X509Certificate(certificate.certPem);

function settings(allowedNames: string[] = []): AuthenticationSettings {
  return {
    requestHeader: {
      anchors: TrustAnchors.fromPem(certs.frontProxyCa.certPem, 'front-proxy'),
      config: { ...DEFAULT_REQUEST_HEADER_CONFIG, allowedNames },
    },
    clientCa: TrustAnchors.fromPem(certs.clientCa.certPem, 'client'),
  };
}

function peer(leaf: IssuedCertificate, overrides: Partial<PeerCertificates> = {}): PeerCertificates {
  const certificate = x509(leaf);
  // An empty subject reads as undefined.
  const subject = certificate.subject ?? '';
  const cn = /^CN=(.*)$/m.exec(subject)?.[1];
  return {
    authorized: true,
    chain: [certificate],
    ...(cn === undefined ? {} : { commonName: cn }),
    organizations: [...subject.matchAll(/^O=(.*)$/gm)].map((m) => m[1] ?? ''),
    extKeyUsage: ['1.3.6.1.5.5.7.3.2'],
    ...overrides,
  };
}

describe('TrustAnchors', () => {
  it('parses every certificate of a PEM bundle', () => {
    const bundle = `${certs.frontProxyCa.certPem}\n${certs.clientCa.certPem}`;
    expect(TrustAnchors.fromPem(bundle, '--client-ca-file').size).toBe(2);
  });

  it.each([
    ['', /^--client-ca-file: holds no PEM certificate/],
    [
      '-----BEGIN CERTIFICATE-----\nnot base64 der\n-----END CERTIFICATE-----',
      /^--client-ca-file: certificate #1 does not parse/,
    ],
  ])('rejects %j naming the source', (pem, message) => {
    expect(() => TrustAnchors.fromPem(pem, '--client-ca-file')).toThrow(message);
  });

  it('tells which CA issued a chain, through presented intermediates', () => {
    const frontProxy = TrustAnchors.fromPem(certs.frontProxyCa.certPem, 'a');
    const client = TrustAnchors.fromPem(certs.clientCa.certPem, 'b');
    expect(frontProxy.issued([x509(certs.frontProxyClient)])).toBe(true);
    expect(client.issued([x509(certs.frontProxyClient)])).toBe(false);
    expect(frontProxy.issued([x509(certs.viaIntermediate), x509(certs.intermediate)])).toBe(true);
    // Without the intermediate there is no path to the root.
    expect(frontProxy.issued([x509(certs.viaIntermediate)])).toBe(false);
    // A rogue CA that copies the subject name does not verify.
    expect(TrustAnchors.fromPem(certs.rogueCa.certPem, 'c').issued([x509(certs.alice)])).toBe(false);
    expect(frontProxy.issued([])).toBe(false);
  });
});

describe('classifyPeer', () => {
  it.each<[string, () => PeerCertificates, string[], PeerClass]>([
    [
      'no certificate',
      () => ({ authorized: false, chain: [], organizations: [] }),
      [],
      {
        kind: 'rejected',
        message: 'no client certificate was presented',
      },
    ],
    [
      'a certificate OpenSSL rejected',
      () =>
        peer(certs.frontProxyClient, {
          authorized: false,
          authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        }),
      [],
      { kind: 'rejected', message: 'the client certificate was rejected (UNABLE_TO_VERIFY_LEAF_SIGNATURE)' },
    ],
    [
      'a certificate without the clientAuth usage',
      () => peer(certs.frontProxyClient, { extKeyUsage: ['1.3.6.1.5.5.7.3.1'] }),
      [],
      {
        kind: 'rejected',
        message: 'the client certificate does not allow client authentication (extended key usage)',
      },
    ],
    [
      'the front proxy, any CN allowed',
      () => peer(certs.frontProxyClient),
      [],
      {
        kind: 'front-proxy',
        commonName: 'front-proxy-client',
      },
    ],
    [
      'the front proxy with an allowed CN',
      () => peer(certs.frontProxyClient),
      ['front-proxy-client'],
      {
        kind: 'front-proxy',
        commonName: 'front-proxy-client',
      },
    ],
    [
      'the front-proxy CA but a CN that is not allowed',
      () => peer(certs.frontProxyClient),
      ['aggregator'],
      {
        kind: 'rejected',
        message:
          'the front-proxy client certificate CN "front-proxy-client" is not one of --requestheader-allowed-names (aggregator)',
      },
    ],
    [
      'the front proxy through an intermediate',
      () => {
        const leaf = peer(certs.viaIntermediate);
        return { ...leaf, chain: [...leaf.chain, x509(certs.intermediate)] };
      },
      [],
      { kind: 'front-proxy', commonName: 'front-proxy-client' },
    ],
    [
      'a client-CA user',
      () => peer(certs.alice),
      ['front-proxy-client'],
      {
        kind: 'client',
        commonName: 'alice',
        organizations: ['dev', 'ops'],
      },
    ],
    [
      'a client-CA certificate without CN',
      () => peer(certs.noCommonName),
      [],
      {
        kind: 'rejected',
        message: 'the client certificate has no common name (CN)',
      },
    ],
    [
      'a verified certificate with no visible path while both CA files are set',
      () => peer(certs.viaIntermediate),
      [],
      {
        kind: 'rejected',
        message:
          'the client certificate is signed by an intermediate CA that is in neither CA file; add the intermediate to --requestheader-client-ca-file or --client-ca-file',
      },
    ],
  ])('%s', (_name, makePeer, allowedNames, expected) => {
    expect(classifyPeer(makePeer(), settings(allowedNames))).toEqual(expected);
  });

  it('with one CA file, a verified leaf whose intermediate Node did not expose belongs to that file', () => {
    const onlyFrontProxy = { requestHeader: settings().requestHeader } as AuthenticationSettings;
    const onlyClient = { clientCa: TrustAnchors.fromPem(certs.frontProxyCa.certPem, 'client') };
    expect(classifyPeer(peer(certs.viaIntermediate), onlyFrontProxy)).toEqual({
      kind: 'front-proxy',
      commonName: 'front-proxy-client',
    });
    expect(classifyPeer(peer(certs.viaIntermediate), onlyClient)).toMatchObject({ kind: 'client' });
    // Not a way around OpenSSL: an unverified certificate stays rejected.
    expect(classifyPeer(peer(certs.viaIntermediate, { authorized: false }), onlyFrontProxy).kind).toBe(
      'rejected',
    );
    // Nor is a handshake made before the CA files changed: OpenSSL vouched for the old CAs.
    expect(
      classifyPeer(peer(certs.viaIntermediate, { verifiedWithCurrentCas: false }), onlyFrontProxy),
    ).toEqual({
      kind: 'rejected',
      message: 'the client certificate was verified against CAs that have since been rotated',
    });
    // A visible path to a current CA still counts on such a connection.
    expect(
      classifyPeer(peer(certs.frontProxyClient, { verifiedWithCurrentCas: false }), onlyFrontProxy).kind,
    ).toBe('front-proxy');
  });

  it('an intermediate in the CA file is an anchor of its own', () => {
    const withIntermediate: AuthenticationSettings = {
      requestHeader: {
        anchors: TrustAnchors.fromPem(certs.intermediate.certPem, 'front-proxy'),
        config: DEFAULT_REQUEST_HEADER_CONFIG,
      },
      clientCa: TrustAnchors.fromPem(certs.clientCa.certPem, 'client'),
    };
    expect(classifyPeer(peer(certs.viaIntermediate), withIntermediate).kind).toBe('front-proxy');
  });

  it('a certificate without the extended key usage extension is accepted, as Go accepts it', () => {
    const { extKeyUsage: _omitted, ...withoutEku } = peer(certs.alice);
    expect(classifyPeer(withoutEku, settings()).kind).toBe('client');
  });
});

describe('authenticateRequest', () => {
  const frontProxy: PeerClass = { kind: 'front-proxy', commonName: 'front-proxy-client' };

  it('reads user, groups and extras from a front-proxy request', () => {
    const result = authenticateRequest(
      frontProxy,
      {
        'x-remote-user': ['system:serviceaccount:kube-system:horizontal-pod-autoscaler'],
        'x-remote-group': ['system:serviceaccounts', 'system:serviceaccounts:kube-system'],
        'x-remote-extra-authentication.kubernetes.io%2fpod-name': ['kube-controller-manager-0'],
        'x-remote-extra-scopes': ['a', 'b'],
        'user-agent': ['kube-controller-manager'],
      },
      settings(),
    );
    expect(result).toEqual({
      ok: true,
      user: {
        name: 'system:serviceaccount:kube-system:horizontal-pod-autoscaler',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
        extra: { 'authentication.kubernetes.io/pod-name': ['kube-controller-manager-0'], scopes: ['a', 'b'] },
        via: 'front-proxy',
      },
    });
  });

  it('adds system:authenticated only once', () => {
    const result = authenticateRequest(
      frontProxy,
      { 'x-remote-user': ['u'], 'x-remote-group': ['system:authenticated'] },
      settings(),
    );
    expect(result.ok && result.user.groups).toEqual(['system:authenticated']);
  });

  it('takes the first non-empty configured username header', () => {
    const custom: AuthenticationSettings = {
      requestHeader: {
        anchors: TrustAnchors.fromPem(certs.frontProxyCa.certPem, 'x'),
        config: { ...DEFAULT_REQUEST_HEADER_CONFIG, usernameHeaders: ['x-remote-user', 'x-forwarded-user'] },
      },
    };
    const result = authenticateRequest(
      frontProxy,
      { 'x-remote-user': [''], 'x-forwarded-user': ['bob'] },
      custom,
    );
    expect(result.ok && result.user.name).toBe('bob');
  });

  it('rejects a front-proxy request that names no user', () => {
    expect(authenticateRequest(frontProxy, { 'x-remote-group': ['system:masters'] }, settings())).toEqual({
      ok: false,
      message: 'the front-proxy request carries no user (x-remote-user)',
    });
  });

  it('ignores identity headers on a client-certificate connection', () => {
    const result = authenticateRequest(
      { kind: 'client', commonName: 'alice', organizations: ['dev'] },
      { 'x-remote-user': ['system:admin'], 'x-remote-group': ['system:masters'] },
      settings(),
    );
    expect(result).toEqual({
      ok: true,
      user: { name: 'alice', groups: ['dev', 'system:authenticated'], extra: {}, via: 'client-certificate' },
    });
  });

  it('passes a rejection through', () => {
    expect(
      authenticateRequest({ kind: 'rejected', message: 'nope' }, { 'x-remote-user': ['x'] }, settings()),
    ).toEqual({
      ok: false,
      message: 'nope',
    });
  });
});

describe('identityHeadersOf', () => {
  /** What Node's `headersDistinct` holds for raw header lines (names lower-cased, values in order). */
  function distinct(raw: readonly string[]): Record<string, string[]> {
    const headers: Record<string, string[]> = {};
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = (raw[i] ?? '').toLowerCase();
      headers[name] = [...(headers[name] ?? []), raw[i + 1] ?? ''];
    }
    return headers;
  }

  it('keeps every identity header line, lower-cased and in order, and nothing else', () => {
    expect(
      identityHeadersOf(
        [
          'Host',
          'h',
          'X-Remote-Group',
          'a',
          'X-Remote-User',
          'u',
          'x-remote-group',
          'b',
          'X-REMOTE-EXTRA-Scopes',
          's',
          'X-Forwarded-For',
          '10.0.0.1',
        ],
        DEFAULT_REQUEST_HEADER_CONFIG,
      ),
    ).toEqual({ 'x-remote-group': ['a', 'b'], 'x-remote-user': ['u'], 'x-remote-extra-scopes': ['s'] });
  });

  it('authenticates exactly as the full headersDistinct would', () => {
    const frontProxy: PeerClass = { kind: 'front-proxy', commonName: 'front-proxy-client' };
    const config = {
      ...DEFAULT_REQUEST_HEADER_CONFIG,
      usernameHeaders: ['x-remote-user', 'x-forwarded-user'],
      extraHeaderPrefixes: ['x-remote-extra-', 'x-extra-'],
    };
    const settingsWith: AuthenticationSettings = {
      requestHeader: { anchors: TrustAnchors.fromPem(certs.frontProxyCa.certPem, 'x'), config },
    };
    const name = fc
      .constantFrom(
        'x-remote-user',
        'x-forwarded-user',
        'x-remote-group',
        'x-remote-extra-scopes',
        'x-remote-extra-a%2fb',
        'x-remote-extra-A%2Fb',
        'x-extra-scopes',
        'host',
        'x-remote',
        'user-agent',
      )
      .chain((lower) =>
        fc
          .array(fc.boolean(), { minLength: lower.length, maxLength: lower.length })
          .map((upper) => [...lower].map((char, i) => (upper[i] ? char.toUpperCase() : char)).join('')),
      );
    const value = fc.constantFrom('', 'u', 'system:masters', 'system:authenticated', 'a,b');
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 12 }), (lines) => {
        const raw = lines.flat();
        expect(identityHeadersOf(raw, config)).toEqual(
          Object.fromEntries(
            Object.entries(distinct(raw)).filter(([header]) => isIdentityHeader(header, config)),
          ),
        );
        expect(authenticateRequest(frontProxy, identityHeadersOf(raw, config), settingsWith)).toEqual(
          authenticateRequest(frontProxy, distinct(raw), settingsWith),
        );
      }),
      { numRuns: 300 },
    );
  });
});

describe('stripIdentityHeaders', () => {
  it('removes every configured identity header and nothing else', () => {
    const headers = {
      'x-remote-user': 'a',
      'x-remote-group': 'b',
      'x-remote-extra-scopes': 'c',
      'x-remote-uid': 'kept: not configured',
      accept: 'application/json',
    };
    stripIdentityHeaders(headers, DEFAULT_REQUEST_HEADER_CONFIG);
    expect(headers).toEqual({ 'x-remote-uid': 'kept: not configured', accept: 'application/json' });
  });
});

describe('requestAttributes', () => {
  it.each([
    [
      'GET',
      '/apis/external.metrics.k8s.io/v1beta1/namespaces/llm/tokenscaler_desired_replicas',
      {
        kind: 'resource',
        verb: 'list',
        group: 'external.metrics.k8s.io',
        version: 'v1beta1',
        namespace: 'llm',
        resource: 'tokenscaler_desired_replicas',
      },
    ],
    [
      'GET',
      '/apis/custom.metrics.k8s.io/v1beta2/namespaces/llm/tokenscalers.tokenscaler.dev/a/tokenscaler_demand_tokens',
      {
        kind: 'resource',
        verb: 'get',
        group: 'custom.metrics.k8s.io',
        version: 'v1beta2',
        namespace: 'llm',
        resource: 'tokenscalers.tokenscaler.dev',
        name: 'a',
        subresource: 'tokenscaler_demand_tokens',
      },
    ],
    [
      'GET',
      '/apis/external.metrics.k8s.io/v1beta1',
      { kind: 'non-resource', verb: 'get', path: '/apis/external.metrics.k8s.io/v1beta1' },
    ],
    [
      'HEAD',
      '/keda/v1/namespaces/a/tokenscalers/b',
      { kind: 'non-resource', verb: 'get', path: '/keda/v1/namespaces/a/tokenscalers/b' },
    ],
    ['POST', '/apis', { kind: 'non-resource', verb: 'post', path: '/apis' }],
  ])('%s %s', (method, path, expected) => {
    expect(requestAttributes(method, path)).toEqual(expected);
  });
});

describe('authorization', () => {
  const user = (name: string, groups: string[]): UserInfo => ({
    name,
    groups,
    extra: {},
    via: 'front-proxy',
  });

  it.each([
    [user('system:anonymous', ['system:unauthenticated']), false],
    [user('someone', ['system:unauthenticated']), false],
    [user('system:kube-aggregator', ['system:masters', 'system:authenticated']), true],
    [user('system:serviceaccount:kube-system:horizontal-pod-autoscaler', ['system:authenticated']), true],
  ])('%o -> allowed %s', (who, allowed) => {
    const attributes = requestAttributes('GET', '/apis/external.metrics.k8s.io/v1beta1');
    expect(authenticatedUsersAuthorizer.authorize(who, attributes)).toMatchObject({ allowed });
  });

  it('words a denial as kube-apiserver does', () => {
    const anonymous = user('system:anonymous', []);
    expect(
      forbiddenMessage(
        anonymous,
        requestAttributes(
          'GET',
          '/apis/external.metrics.k8s.io/v1beta1/namespaces/llm/tokenscaler_desired_replicas',
        ),
      ),
    ).toBe(
      'tokenscaler_desired_replicas.external.metrics.k8s.io is forbidden: User "system:anonymous" cannot list resource "tokenscaler_desired_replicas" in API group "external.metrics.k8s.io" in the namespace "llm"',
    );
    expect(forbiddenMessage(anonymous, requestAttributes('GET', '/apis'), 'no')).toBe(
      'forbidden: User "system:anonymous" cannot get path "/apis": no',
    );
  });
});
