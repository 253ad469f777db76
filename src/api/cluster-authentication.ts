/**
 * @module api/cluster-authentication
 *
 * In a cluster the CAs need not be mounted: kube-apiserver publishes them in the ConfigMap
 * `kube-system/extension-apiserver-authentication` (reference/external-metrics-contract.md §4.1
 * item 4). As k8s.io/apiserver's `lookupMissingConfigInCluster` does, flags win: a CA given by
 * file is used as is, and only a missing one is filled from the ConfigMap, the front-proxy settings
 * (allowed names, header names) coming with the front-proxy CA. The ConfigMap is re-read on every
 * load, so CA rotation by kube-apiserver reaches the server like a file change.
 *
 * Reading it needs RBAC: a RoleBinding in kube-system to the built-in Role
 * `extension-apiserver-authentication-reader` (contract §3.2 item 6).
 */
import { z } from 'zod';
import { describeIssues } from '../config/format-issues.ts';
import { InvalidInputError } from '../errors.ts';
import type { RequestHeaderConfig } from './auth.ts';
import type { MaterialSource, ServingFiles } from './material.ts';
import { fileMaterialSource } from './material.ts';

export const AUTHENTICATION_CONFIGMAP = 'kube-system/extension-apiserver-authentication';

/** Reads the ConfigMap's `data`; undefined when it does not exist. Owned by api/, built in kube/. */
export type ConfigMapReader = (signal: AbortSignal) => Promise<Readonly<Record<string, string>> | undefined>;

/** A JSON array of strings inside a ConfigMap value, e.g. `["front-proxy-client"]`. */
const jsonStringList = z.string().transform((text, context) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    context.addIssue({ code: 'custom', message: 'expected a JSON array of strings' });
    return z.NEVER;
  }
  const list = z.array(z.string()).safeParse(parsed);
  if (!list.success) {
    context.addIssue({ code: 'custom', message: 'expected a JSON array of strings' });
    return z.NEVER;
  }
  return list.data;
});

const configMapSchema = z.object({
  'client-ca-file': z.string().min(1).optional(),
  'requestheader-client-ca-file': z.string().min(1).optional(),
  'requestheader-allowed-names': jsonStringList.optional(),
  'requestheader-username-headers': jsonStringList.optional(),
  'requestheader-group-headers': jsonStringList.optional(),
  'requestheader-extra-headers-prefix': jsonStringList.optional(),
});

export interface ClusterAuthentication {
  clientCaPem?: string;
  requestHeaderCaPem?: string;
  requestHeader?: RequestHeaderConfig;
}

/**
 * Parses the ConfigMap data. Header names are lower-cased (Node delivers them so); a list that is
 * absent or empty falls back to kube-apiserver's default, as the Go code does.
 */
export function parseAuthenticationConfigMap(data: Readonly<Record<string, string>>): ClusterAuthentication {
  const result = configMapSchema.safeParse(data);
  if (!result.success) {
    throw new InvalidInputError(
      `configmap ${AUTHENTICATION_CONFIGMAP}`,
      describeIssues(result.error.issues, data),
      {
        cause: result.error,
      },
    );
  }
  const values = result.data;
  const lower = (list: readonly string[] | undefined, fallback: readonly string[]) =>
    list === undefined || list.length === 0 ? [...fallback] : list.map((header) => header.toLowerCase());
  const requestHeaderCaPem = values['requestheader-client-ca-file'];
  return {
    ...(values['client-ca-file'] === undefined ? {} : { clientCaPem: values['client-ca-file'] }),
    ...(requestHeaderCaPem === undefined
      ? {}
      : {
          requestHeaderCaPem,
          requestHeader: {
            allowedNames: values['requestheader-allowed-names'] ?? [],
            usernameHeaders: lower(values['requestheader-username-headers'], ['x-remote-user']),
            groupHeaders: lower(values['requestheader-group-headers'], ['x-remote-group']),
            extraHeaderPrefixes: lower(values['requestheader-extra-headers-prefix'], ['x-remote-extra-']),
          },
        }),
  };
}

/**
 * The serving files plus, for each CA not given by flag, the ConfigMap's. A failing ConfigMap read
 * fails the load: fatal at start (as `--authentication-tolerate-lookup-failure=false`), and at a
 * reload the server keeps what it has.
 */
export function clusterMaterialSource(files: ServingFiles, readConfigMap: ConfigMapReader): MaterialSource {
  const fromFiles = fileMaterialSource(files);
  const needsLookup = files.clientCaFile === undefined || files.requestHeaderCaFile === undefined;
  return {
    async load(signal) {
      const material = await fromFiles.load(signal);
      if (!needsLookup) return material;
      let data: Readonly<Record<string, string>> | undefined;
      try {
        data = await readConfigMap(signal);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new InvalidInputError(`configmap ${AUTHENTICATION_CONFIGMAP}`, `cannot be read: ${reason}`, {
          cause: error,
        });
      }
      if (data === undefined) return material;
      const cluster = parseAuthenticationConfigMap(data);
      return {
        ...material,
        ...(files.clientCaFile === undefined && cluster.clientCaPem !== undefined
          ? { clientCaPem: cluster.clientCaPem }
          : {}),
        ...(files.requestHeaderCaFile === undefined && cluster.requestHeaderCaPem !== undefined
          ? { requestHeaderCaPem: cluster.requestHeaderCaPem, requestHeader: cluster.requestHeader }
          : {}),
      };
    },
    describe() {
      return needsLookup
        ? `${fromFiles.describe()} configmap=${AUTHENTICATION_CONFIGMAP}`
        : fromFiles.describe();
    },
  };
}
