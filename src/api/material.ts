/**
 * @module api/material
 *
 * The TLS material the API serves with: its certificate and key, and the CAs its clients'
 * certificates are checked against (the front-proxy CA of `--requestheader-client-ca-file` and the
 * `--client-ca-file` CA). It is read through a `MaterialSource` so the files can be swapped for
 * another source (e.g. the kube-system/extension-apiserver-authentication ConfigMap), validated as a
 * whole, and reloaded when any part of it changes.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { InvalidInputError } from '../errors.ts';
import type { AuthenticationSettings, RequestHeaderConfig } from './auth.ts';
import { TrustAnchors } from './auth.ts';

export interface ServingMaterial {
  certPem: string;
  keyPem: string;
  /** PEM bundle of the front-proxy CA; undefined: front-proxy authentication is off. */
  requestHeaderCaPem?: string;
  /** PEM bundle of the client CA; undefined: client-certificate authentication is off. */
  clientCaPem?: string;
  /**
   * Front-proxy settings that came with the CA (the extension-apiserver-authentication ConfigMap
   * carries them); undefined: the `--requestheader-*` flags apply.
   */
  requestHeader?: RequestHeaderConfig;
}

export interface MaterialSource {
  load(signal: AbortSignal): Promise<ServingMaterial>;
  /** Names the source in messages and logs, e.g. the file paths. */
  describe(): string;
}

export interface ServingFiles {
  certFile: string;
  keyFile: string;
  requestHeaderCaFile?: string;
  clientCaFile?: string;
}

/** The flag each file came from, so errors name what the operator typed. */
const FLAG_OF: Record<keyof ServingFiles, string> = {
  certFile: '--tls-cert-file',
  keyFile: '--tls-private-key-file',
  requestHeaderCaFile: '--requestheader-client-ca-file',
  clientCaFile: '--client-ca-file',
};

/**
 * Reads the files on every `load`. Kubernetes updates mounted Secrets and ConfigMaps by swapping a
 * symlink, which file watchers often miss; re-reading on a timer and comparing contents does not.
 */
export function fileMaterialSource(files: ServingFiles): MaterialSource {
  const read = async (key: keyof ServingFiles, signal: AbortSignal): Promise<string | undefined> => {
    const path = files[key];
    if (path === undefined) return undefined;
    try {
      return await readFile(path, { encoding: 'utf8', signal });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new InvalidInputError(FLAG_OF[key], `cannot read ${JSON.stringify(path)}: ${reason}`, {
        cause: error,
      });
    }
  };
  return {
    async load(signal) {
      const [certPem, keyPem, requestHeaderCaPem, clientCaPem] = await Promise.all([
        read('certFile', signal),
        read('keyFile', signal),
        read('requestHeaderCaFile', signal),
        read('clientCaFile', signal),
      ]);
      if (certPem === undefined || keyPem === undefined) {
        throw new InvalidInputError('--tls-cert-file', 'and --tls-private-key-file are both required');
      }
      return {
        certPem,
        keyPem,
        ...(requestHeaderCaPem === undefined ? {} : { requestHeaderCaPem }),
        ...(clientCaPem === undefined ? {} : { clientCaPem }),
      };
    },
    describe() {
      return Object.entries(files)
        .filter(([, path]) => path !== undefined)
        .map(([key, path]) => `${FLAG_OF[key as keyof ServingFiles]}=${path}`)
        .join(' ');
    },
  };
}

/** Validated material, ready to hand to `https.createServer` / `setSecureContext`. */
export interface PreparedMaterial {
  secureContext: SecureContextOptions;
  authentication: AuthenticationSettings;
  /** SHA-256 over every part: equal fingerprints mean nothing changed. */
  fingerprint: string;
  /** SHA-256 over the CA files and the allowed names: what decides whom the server trusts. */
  trustFingerprint: string;
  /** The front-proxy settings in force (the material's own, else the flags'). */
  requestHeader: RequestHeaderConfig;
  /** The serving certificate's notAfter, Unix seconds (exported as a metric, logged on reload). */
  certificateNotAfterSeconds: number;
  certificateSubject: string;
}

export function materialFingerprint(material: ServingMaterial): string {
  const hash = createHash('sha256');
  const requestHeader =
    material.requestHeader === undefined ? undefined : JSON.stringify(material.requestHeader);
  for (const part of [
    material.certPem,
    material.keyPem,
    material.requestHeaderCaPem,
    material.clientCaPem,
    requestHeader,
  ]) {
    hash.update(part ?? '\u0000absent');
    hash.update('\u0000');
  }
  return hash.digest('hex');
}

/**
 * Checks the material as a whole before it replaces what is served: the key matches the
 * certificate, every CA bundle parses, and at least one CA exists (without one, no client could
 * ever authenticate). Throws `InvalidInputError` naming the flag.
 */
export function prepareMaterial(
  material: ServingMaterial,
  requestHeaderFromFlags: RequestHeaderConfig,
): PreparedMaterial {
  const requestHeader = material.requestHeader ?? requestHeaderFromFlags;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(material.certPem);
  } catch (error) {
    throw new InvalidInputError('--tls-cert-file', `does not hold a PEM certificate: ${String(error)}`, {
      cause: error,
    });
  }
  const requestHeaderAnchors =
    material.requestHeaderCaPem === undefined
      ? undefined
      : TrustAnchors.fromPem(material.requestHeaderCaPem, '--requestheader-client-ca-file');
  const clientAnchors =
    material.clientCaPem === undefined
      ? undefined
      : TrustAnchors.fromPem(material.clientCaPem, '--client-ca-file');
  if (requestHeaderAnchors === undefined && clientAnchors === undefined) {
    throw new InvalidInputError(
      '--requestheader-client-ca-file',
      'or --client-ca-file is required: without a client CA no caller can authenticate (use --insecure-serving only for a local demo)',
    );
  }
  if (requestHeaderAnchors === undefined && requestHeader.allowedNames.length > 0) {
    throw new InvalidInputError(
      '--requestheader-allowed-names',
      'needs --requestheader-client-ca-file (the names restrict certificates that CA signed)',
    );
  }
  const ca = [material.requestHeaderCaPem, material.clientCaPem].filter(
    (pem): pem is string => pem !== undefined,
  );
  // OpenSSL needs each chain to end at a self-signed root in these files (an intermediate-only
  // bundle fails; Node's TLS server does not pass allowPartialTrustChain through). Intermediates
  // may sit in a file next to their root, which also lets auth.ts tell the files apart when Node
  // does not expose the intermediates a client sent.
  const secureContext: SecureContextOptions = { cert: material.certPem, key: material.keyPem, ca };
  try {
    // Builds an OpenSSL context exactly as the server will: fails on a key that does not match.
    createSecureContext(secureContext);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InvalidInputError(
      '--tls-private-key-file',
      `cannot be used with --tls-cert-file (${describeSubject(leaf)}): ${reason}`,
      { cause: error },
    );
  }
  return {
    secureContext,
    authentication: {
      ...(requestHeaderAnchors === undefined
        ? {}
        : { requestHeader: { anchors: requestHeaderAnchors, config: requestHeader } }),
      ...(clientAnchors === undefined ? {} : { clientCa: clientAnchors }),
    },
    fingerprint: materialFingerprint(material),
    trustFingerprint: createHash('sha256')
      .update(
        JSON.stringify([material.requestHeaderCaPem ?? null, material.clientCaPem ?? null, requestHeader]),
      )
      .digest('hex'),
    certificateNotAfterSeconds: Math.floor(leaf.validToDate.getTime() / 1000),
    certificateSubject: describeSubject(leaf),
    requestHeader,
  };
}

function describeSubject(certificate: X509Certificate): string {
  // Node returns undefined for an empty subject.
  const subject = (certificate.subject as string | undefined) ?? '';
  return subject === '' ? '(empty subject)' : subject.replace(/\n/g, ', ');
}
