import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCertificate } from '../../test/support/certs.ts';
import { TestPki } from '../../test/support/certs.ts';
import { DEFAULT_REQUEST_HEADER_CONFIG } from './auth.ts';
import type { ServingMaterial } from './material.ts';
import { fileMaterialSource, materialFingerprint, prepareMaterial } from './material.ts';

let pki: TestPki;
let servingCa: IssuedCertificate;
let frontProxyCa: IssuedCertificate;
let serving: IssuedCertificate;
let other: IssuedCertificate;

beforeAll(async () => {
  pki = await TestPki.create();
  [servingCa, frontProxyCa] = await Promise.all([pki.createCa('serving-ca'), pki.createCa('front-proxy-ca')]);
  [serving, other] = await Promise.all([pki.issueServing(servingCa), pki.issueServing(servingCa, 'other')]);
});

afterAll(async () => {
  await pki?.dispose();
});

function material(overrides: Partial<ServingMaterial> = {}): ServingMaterial {
  return {
    certPem: serving.certPem,
    keyPem: serving.keyPem,
    requestHeaderCaPem: frontProxyCa.certPem,
    ...overrides,
  };
}

describe('prepareMaterial', () => {
  it('accepts a matching certificate and key with a CA, and reports the expiry', () => {
    const prepared = prepareMaterial(material(), DEFAULT_REQUEST_HEADER_CONFIG);
    expect(prepared.authentication.requestHeader?.anchors.size).toBe(1);
    expect(prepared.authentication.clientCa).toBeUndefined();
    expect(prepared.certificateSubject).toBe('CN=tokenscaler.tokenscaler.svc');
    const secondsLeft = prepared.certificateNotAfterSeconds - Date.now() / 1000;
    expect(secondsLeft).toBeGreaterThan(0);
    expect(secondsLeft).toBeLessThanOrEqual(86_400 + 60);
    expect(prepared.secureContext.ca).toEqual([frontProxyCa.certPem]);
  });

  it.each([
    [
      'a key that belongs to another certificate',
      () => material({ keyPem: other.keyPem }),
      /^--tls-private-key-file: cannot be used with --tls-cert-file \(CN=tokenscaler.tokenscaler.svc\)/,
    ],
    [
      'a certificate file that holds no certificate',
      () => material({ certPem: 'garbage' }),
      /^--tls-cert-file: does not hold a PEM certificate/,
    ],
    [
      'no client CA at all',
      () => material({ requestHeaderCaPem: undefined }),
      /^--requestheader-client-ca-file: or --client-ca-file is required/,
    ],
    [
      'a CA file without certificates',
      () => material({ clientCaPem: 'not a pem' }),
      /^--client-ca-file: holds no PEM certificate/,
    ],
  ])('rejects %s', (_name, make, message) => {
    expect(() => prepareMaterial(make(), DEFAULT_REQUEST_HEADER_CONFIG)).toThrow(message);
  });

  it('rejects allowed names without a request-header CA', () => {
    const config = { ...DEFAULT_REQUEST_HEADER_CONFIG, allowedNames: ['front-proxy-client'] };
    expect(() =>
      prepareMaterial(material({ requestHeaderCaPem: undefined, clientCaPem: frontProxyCa.certPem }), config),
    ).toThrow(/^--requestheader-allowed-names: needs --requestheader-client-ca-file/);
  });
});

describe('materialFingerprint', () => {
  it('changes when any part changes, and only then', () => {
    const base = materialFingerprint(material());
    expect(materialFingerprint(material())).toBe(base);
    expect(materialFingerprint(material({ keyPem: other.keyPem }))).not.toBe(base);
    expect(materialFingerprint(material({ clientCaPem: frontProxyCa.certPem }))).not.toBe(base);
    expect(
      materialFingerprint(material({ requestHeaderCaPem: undefined, clientCaPem: frontProxyCa.certPem })),
    ).not.toBe(materialFingerprint(material()));
  });
});

describe('fileMaterialSource', () => {
  it('reads the files it was given', async () => {
    const source = fileMaterialSource({
      certFile: serving.certPath,
      keyFile: serving.keyPath,
      clientCaFile: frontProxyCa.certPath,
    });
    await expect(source.load(AbortSignal.timeout(5000))).resolves.toEqual({
      certPem: serving.certPem,
      keyPem: serving.keyPem,
      clientCaPem: frontProxyCa.certPem,
    });
    expect(source.describe()).toBe(
      `--tls-cert-file=${serving.certPath} --tls-private-key-file=${serving.keyPath} --client-ca-file=${frontProxyCa.certPath}`,
    );
  });

  it('names the flag and the path of a file it cannot read', async () => {
    const missing = pki.path('missing.crt');
    const source = fileMaterialSource({
      certFile: serving.certPath,
      keyFile: serving.keyPath,
      requestHeaderCaFile: missing,
    });
    await expect(source.load(AbortSignal.timeout(5000))).rejects.toThrow(
      `--requestheader-client-ca-file: cannot read "${missing}"`,
    );
  });
});
