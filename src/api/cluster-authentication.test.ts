import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCertificate } from '../../test/support/certs.ts';
import { TestPki } from '../../test/support/certs.ts';
import { DEFAULT_REQUEST_HEADER_CONFIG } from './auth.ts';
import { clusterMaterialSource, parseAuthenticationConfigMap } from './cluster-authentication.ts';
import { prepareMaterial } from './material.ts';

let pki: TestPki;
let serving: IssuedCertificate;
let fileCa: IssuedCertificate;
let clusterFrontProxyCa: IssuedCertificate;
let clusterClientCa: IssuedCertificate;

beforeAll(async () => {
  pki = await TestPki.create();
  const servingCa = await pki.createCa('serving-ca');
  [serving, fileCa, clusterFrontProxyCa, clusterClientCa] = await Promise.all([
    pki.issueServing(servingCa),
    pki.createCa('file-ca'),
    pki.createCa('cluster-front-proxy-ca'),
    pki.createCa('cluster-client-ca'),
  ]);
});

afterAll(async () => {
  await pki?.dispose();
});

/** What a kubeadm cluster publishes. */
function configMap(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    'client-ca-file': clusterClientCa.certPem,
    'requestheader-client-ca-file': clusterFrontProxyCa.certPem,
    'requestheader-allowed-names': '["front-proxy-client"]',
    'requestheader-username-headers': '["X-Remote-User"]',
    'requestheader-group-headers': '["X-Remote-Group"]',
    'requestheader-extra-headers-prefix': '["X-Remote-Extra-"]',
    ...overrides,
  };
}

describe('parseAuthenticationConfigMap', () => {
  it('reads the CAs and the front-proxy settings, header names lower-cased', () => {
    expect(parseAuthenticationConfigMap(configMap())).toEqual({
      clientCaPem: clusterClientCa.certPem,
      requestHeaderCaPem: clusterFrontProxyCa.certPem,
      requestHeader: {
        allowedNames: ['front-proxy-client'],
        usernameHeaders: ['x-remote-user'],
        groupHeaders: ['x-remote-group'],
        extraHeaderPrefixes: ['x-remote-extra-'],
      },
    });
  });

  it('falls back to the default headers when the lists are absent or empty', () => {
    const parsed = parseAuthenticationConfigMap({
      'requestheader-client-ca-file': clusterFrontProxyCa.certPem,
      'requestheader-username-headers': '[]',
    });
    expect(parsed.requestHeader).toEqual(DEFAULT_REQUEST_HEADER_CONFIG);
    expect(parsed.clientCaPem).toBeUndefined();
  });

  it('names the ConfigMap, the key and the value it cannot read', () => {
    expect(() =>
      parseAuthenticationConfigMap(configMap({ 'requestheader-allowed-names': 'front-proxy-client' })),
    ).toThrow(
      /^configmap kube-system\/extension-apiserver-authentication: requestheader-allowed-names: expected a JSON array of strings \(got "front-proxy-client"\)/,
    );
    expect(() => parseAuthenticationConfigMap(configMap({ 'requestheader-group-headers': '[1]' }))).toThrow(
      /requestheader-group-headers: expected a JSON array of strings/,
    );
  });
});

describe('clusterMaterialSource', () => {
  const signal = () => AbortSignal.timeout(5000);

  it('fills the CAs no flag gives from the ConfigMap, with its front-proxy settings', async () => {
    const source = clusterMaterialSource({ certFile: serving.certPath, keyFile: serving.keyPath }, async () =>
      configMap(),
    );
    const material = await source.load(signal());
    expect(material.clientCaPem).toBe(clusterClientCa.certPem);
    expect(material.requestHeaderCaPem).toBe(clusterFrontProxyCa.certPem);
    const prepared = prepareMaterial(material, {
      ...DEFAULT_REQUEST_HEADER_CONFIG,
      allowedNames: ['from-flags'],
    });
    expect(prepared.requestHeader.allowedNames).toEqual(['front-proxy-client']);
    expect(source.describe()).toContain('configmap=kube-system/extension-apiserver-authentication');
  });

  it('lets a CA given by flag win over the ConfigMap, kind by kind', async () => {
    const source = clusterMaterialSource(
      { certFile: serving.certPath, keyFile: serving.keyPath, requestHeaderCaFile: fileCa.certPath },
      async () => configMap(),
    );
    const material = await source.load(signal());
    expect(material.requestHeaderCaPem).toBe(fileCa.certPem);
    expect(material.requestHeader).toBeUndefined();
    expect(material.clientCaPem).toBe(clusterClientCa.certPem);
  });

  it('does not read the ConfigMap when both CAs are given by flag', async () => {
    let reads = 0;
    const source = clusterMaterialSource(
      {
        certFile: serving.certPath,
        keyFile: serving.keyPath,
        requestHeaderCaFile: fileCa.certPath,
        clientCaFile: fileCa.certPath,
      },
      async () => {
        reads += 1;
        return configMap();
      },
    );
    await source.load(signal());
    expect(reads).toBe(0);
  });

  it('serves with the files alone when the ConfigMap does not exist', async () => {
    const source = clusterMaterialSource(
      { certFile: serving.certPath, keyFile: serving.keyPath, clientCaFile: fileCa.certPath },
      async () => undefined,
    );
    expect((await source.load(signal())).requestHeaderCaPem).toBeUndefined();
  });

  it('fails the load, naming the ConfigMap, when it cannot be read', async () => {
    const source = clusterMaterialSource(
      { certFile: serving.certPath, keyFile: serving.keyPath },
      async () => {
        throw new Error('configmaps "extension-apiserver-authentication" is forbidden');
      },
    );
    await expect(source.load(signal())).rejects.toThrow(
      /^configmap kube-system\/extension-apiserver-authentication: cannot be read: configmaps .* is forbidden/,
    );
  });
});
