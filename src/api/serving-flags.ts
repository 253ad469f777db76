/**
 * @module api/serving-flags
 *
 * The serving and authentication flags of `tokenscaler controller`, named as kube-apiserver (and
 * every aggregated API server built on k8s.io/apiserver) names them, so operators and charts can
 * reuse what they know. Spread `SERVING_FLAG_OPTIONS` into the command's `parseArgs` options and
 * pass the parsed values to `servingOptionsFromFlags`.
 *
 * List flags accept repetition and commas alike (`--requestheader-allowed-names=a,b`), as the Go
 * flags do.
 */
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { parseOrThrow } from '../config/format-issues.ts';
import { InvalidInputError } from '../errors.ts';
import { DEFAULT_REQUEST_HEADER_CONFIG } from './auth.ts';
import type { ApiServerOptions } from './server.ts';
import { DEFAULT_API_SERVER_OPTIONS } from './server.ts';

export const SERVING_FLAG_OPTIONS = {
  'secure-port': { type: 'string' },
  'bind-address': { type: 'string' },
  'tls-cert-file': { type: 'string' },
  'tls-private-key-file': { type: 'string' },
  'requestheader-client-ca-file': { type: 'string' },
  'requestheader-allowed-names': { type: 'string', multiple: true },
  'requestheader-username-headers': { type: 'string', multiple: true },
  'requestheader-group-headers': { type: 'string', multiple: true },
  'requestheader-extra-headers-prefix': { type: 'string', multiple: true },
  'client-ca-file': { type: 'string' },
  'insecure-serving': { type: 'boolean' },
} as const;

export const SERVING_FLAGS_HELP = `serving (names as kube-apiserver's):
  --secure-port N                       HTTPS port of the metrics APIs (default 6443)
  --bind-address IP                     address to listen on (default 0.0.0.0; 127.0.0.1 with --insecure-serving)
  --tls-cert-file PATH                  serving certificate (PEM; SAN <service>.<namespace>.svc), reloaded on change
  --tls-private-key-file PATH           its private key (PEM), reloaded on change
  --requestheader-client-ca-file PATH   CA of the front proxy (kube-apiserver --proxy-client-cert-file)
  --requestheader-allowed-names NAMES   CNs the front-proxy certificate may have (default: any the CA signed)
  --requestheader-username-headers H    identity headers trusted from the front proxy (default X-Remote-User)
  --requestheader-group-headers H       (default X-Remote-Group)
  --requestheader-extra-headers-prefix P  (default X-Remote-Extra-)
  --client-ca-file PATH                 CA of direct clients (e.g. kubectl); they authenticate as their CN
                                        (CA files hold a root; add intermediates next to it when both CA files are set)
  --insecure-serving                    plain HTTP without authentication, for a local demo only
`;

/** What `parseArgs` returns for `SERVING_FLAG_OPTIONS` (other flags of the command may be present). */
export interface ServingFlagValues {
  'secure-port'?: string | undefined;
  'bind-address'?: string | undefined;
  'tls-cert-file'?: string | undefined;
  'tls-private-key-file'?: string | undefined;
  'requestheader-client-ca-file'?: string | undefined;
  'requestheader-allowed-names'?: string[] | undefined;
  'requestheader-username-headers'?: string[] | undefined;
  'requestheader-group-headers'?: string[] | undefined;
  'requestheader-extra-headers-prefix'?: string[] | undefined;
  'client-ca-file'?: string | undefined;
  'insecure-serving'?: boolean | undefined;
}

const portSchema = z.coerce
  .number({ error: 'expected an integer port from 0 to 65535' })
  .int('expected an integer port from 0 to 65535')
  .min(0, 'expected an integer port from 0 to 65535')
  .max(65535, 'expected an integer port from 0 to 65535');

const ipSchema = z.union([z.ipv4(), z.ipv6()], {
  error: 'expected an IPv4 or IPv6 address, e.g. 0.0.0.0 or ::',
});

/** HTTP header names (RFC 9110 tokens), compared lower-case as Node delivers them. */
const headerSchema = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected an HTTP header name such as X-Remote-User')
  .transform((value) => value.toLowerCase());

function splitList(values: readonly string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  return values
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter((value) => value.length > 0);
}

function resolvePath(cwd: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  if (path.trim() === '') return undefined;
  return isAbsolute(path) ? path : resolve(cwd, path);
}

/**
 * Validates the serving flags and resolves file paths against `cwd`. Throws `InvalidInputError`
 * naming the flag, the value and what is allowed.
 */
export function servingOptionsFromFlags(
  values: ServingFlagValues,
  cwd: string,
  context: {
    /**
     * The CAs a flag does not give come from the kube-system/extension-apiserver-authentication
     * ConfigMap (see cluster-authentication.ts), so no CA flag is required.
     */
    caFromCluster?: boolean;
  } = {},
): ApiServerOptions {
  const insecureServing = values['insecure-serving'] === true;
  const port =
    values['secure-port'] === undefined
      ? DEFAULT_API_SERVER_OPTIONS.port
      : parseOrThrow(
          portSchema,
          values['secure-port'].trim() === '' ? Number.NaN : values['secure-port'],
          '--secure-port',
        );
  // Insecure serving never listens beyond loopback unless told to: the demo must not leak.
  const bindAddress =
    values['bind-address'] === undefined
      ? insecureServing
        ? '127.0.0.1'
        : DEFAULT_API_SERVER_OPTIONS.bindAddress
      : parseOrThrow(ipSchema, values['bind-address'], '--bind-address');

  const headerList = (flag: keyof ServingFlagValues, fallback: readonly string[]): string[] => {
    const list = splitList(values[flag] as string[] | undefined);
    if (list === undefined) return [...fallback];
    if (list.length === 0)
      throw new InvalidInputError(`--${flag}`, 'is empty; give at least one header name');
    return parseOrThrow(z.array(headerSchema), list, `--${flag}`);
  };
  const requestHeader = {
    allowedNames: splitList(values['requestheader-allowed-names']) ?? [],
    usernameHeaders: headerList(
      'requestheader-username-headers',
      DEFAULT_REQUEST_HEADER_CONFIG.usernameHeaders,
    ),
    groupHeaders: headerList('requestheader-group-headers', DEFAULT_REQUEST_HEADER_CONFIG.groupHeaders),
    extraHeaderPrefixes: headerList(
      'requestheader-extra-headers-prefix',
      DEFAULT_REQUEST_HEADER_CONFIG.extraHeaderPrefixes,
    ),
  };

  const certFile = resolvePath(cwd, values['tls-cert-file']);
  const keyFile = resolvePath(cwd, values['tls-private-key-file']);
  const requestHeaderCaFile = resolvePath(cwd, values['requestheader-client-ca-file']);
  const clientCaFile = resolvePath(cwd, values['client-ca-file']);
  const base = { ...DEFAULT_API_SERVER_OPTIONS, port, bindAddress, insecureServing, requestHeader };

  if (insecureServing) {
    const tlsFlags = (
      ['tls-cert-file', 'tls-private-key-file', 'requestheader-client-ca-file', 'client-ca-file'] as const
    ).filter((flag) => values[flag] !== undefined);
    if (tlsFlags.length > 0) {
      throw new InvalidInputError(
        '--insecure-serving',
        `cannot be combined with ${tlsFlags.map((flag) => `--${flag}`).join(', ')}: insecure serving is plain HTTP without authentication`,
      );
    }
    return base;
  }
  if (certFile === undefined || keyFile === undefined) {
    throw new InvalidInputError(
      certFile === undefined ? '--tls-cert-file' : '--tls-private-key-file',
      'is required: the metrics APIs are served over HTTPS (give --tls-cert-file and --tls-private-key-file, or --insecure-serving for a local demo)',
    );
  }
  if (requestHeaderCaFile === undefined && clientCaFile === undefined && context.caFromCluster !== true) {
    throw new InvalidInputError(
      '--requestheader-client-ca-file',
      'or --client-ca-file is required: without a client CA no caller can authenticate',
    );
  }
  if (requestHeaderCaFile === undefined && requestHeader.allowedNames.length > 0) {
    throw new InvalidInputError(
      '--requestheader-allowed-names',
      context.caFromCluster === true
        ? 'needs --requestheader-client-ca-file: with the front-proxy CA from the cluster ConfigMap, its allowed names come from there too'
        : 'needs --requestheader-client-ca-file (the names restrict certificates that CA signed)',
    );
  }
  return {
    ...base,
    tls: {
      certFile,
      keyFile,
      ...(requestHeaderCaFile === undefined ? {} : { requestHeaderCaFile }),
      ...(clientCaFile === undefined ? {} : { clientCaFile }),
    },
  };
}
