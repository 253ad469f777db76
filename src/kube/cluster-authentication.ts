/**
 * @module The front-proxy CA from the cluster: the `kube-system/extension-apiserver-authentication`
 * ConfigMap that kube-apiserver publishes for aggregated API servers
 * (reference/external-metrics-contract.md §0.5). Every aggregated server reads it (with the
 * `extension-apiserver-authentication-reader` Role), so operators need not copy CA files around.
 */
import type { MaterialSource } from '../api/material.ts';
import type { KubeApi } from './kube-api.ts';

export const AUTHENTICATION_CONFIGMAP = {
  namespace: 'kube-system',
  name: 'extension-apiserver-authentication',
} as const;

export interface ClusterAuthentication {
  /** PEM bundle of `requestheader-client-ca-file`. */
  requestHeaderCaPem: string | undefined;
  /** PEM bundle of `client-ca-file`. */
  clientCaPem: string | undefined;
  allowedNames: string[] | undefined;
  usernameHeaders: string[] | undefined;
  groupHeaders: string[] | undefined;
  extraHeaderPrefixes: string[] | undefined;
}

export async function readClusterAuthentication(
  api: KubeApi,
  signal: AbortSignal,
): Promise<ClusterAuthentication | undefined> {
  const data = await api.getConfigMapData(
    AUTHENTICATION_CONFIGMAP.namespace,
    AUTHENTICATION_CONFIGMAP.name,
    signal,
  );
  if (data === undefined) return undefined;
  const list = (value: string | undefined): string[] | undefined => {
    if (value === undefined || value.trim() === '') return undefined;
    try {
      const parsed: unknown = JSON.parse(value);
      return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === 'string') : undefined;
    } catch {
      return undefined;
    }
  };
  const pem = (value: string | undefined) => (value === undefined || value.trim() === '' ? undefined : value);
  return {
    requestHeaderCaPem: pem(data['requestheader-client-ca-file']),
    clientCaPem: pem(data['client-ca-file']),
    allowedNames: list(data['requestheader-allowed-names']),
    usernameHeaders: list(data['requestheader-username-headers']),
    groupHeaders: list(data['requestheader-group-headers']),
    extraHeaderPrefixes: list(data['requestheader-extra-headers-prefix']),
  };
}

/**
 * The serving material from files, with the CAs the files leave out taken from the cluster's
 * ConfigMap on every load (so a rotated front-proxy CA is picked up by the API's reload timer).
 * A CA file given on the command line always wins.
 */
export function withClusterCas(files: MaterialSource, api: KubeApi): MaterialSource {
  return {
    async load(signal) {
      const material = await files.load(signal);
      if (material.requestHeaderCaPem !== undefined && material.clientCaPem !== undefined) return material;
      const cluster = await readClusterAuthentication(api, signal);
      const requestHeaderCaPem = material.requestHeaderCaPem ?? cluster?.requestHeaderCaPem;
      const clientCaPem = material.clientCaPem ?? cluster?.clientCaPem;
      return {
        ...material,
        ...(requestHeaderCaPem === undefined ? {} : { requestHeaderCaPem }),
        ...(clientCaPem === undefined ? {} : { clientCaPem }),
      };
    },
    describe() {
      return `${files.describe()} + ConfigMap ${AUTHENTICATION_CONFIGMAP.namespace}/${AUTHENTICATION_CONFIGMAP.name}`;
    },
  };
}
