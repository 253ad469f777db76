/**
 * @module api/auth
 *
 * Authentication and authorization as reference/external-metrics-contract.md §4.3 ("minimal secure
 * behaviour") lays them out, after k8s.io/apiserver's delegating authenticator (§4.2):
 *
 * 1. Front proxy (kube-apiserver's aggregator): a client certificate that verifies against the
 *    request-header CA, carries the clientAuth extended key usage and, when
 *    `--requestheader-allowed-names` is set, has one of those CNs. Only then are `X-Remote-User`,
 *    `X-Remote-Group` and `X-Remote-Extra-*` trusted.
 * 2. Client certificate (`--client-ca-file`, e.g. kubectl): user = CN, groups = O.
 * 3. Anything else is 401. Identity headers on any other connection are ignored and stripped.
 *
 * Authorization is delegated to an `Authorizer`. kube-apiserver has already run RBAC on a proxied
 * request before forwarding it (§4.1 step 1), so the default authorizer allows every authenticated
 * user except the anonymous one; a SubjectAccessReview authorizer can replace it.
 */
import { X509Certificate } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { InvalidInputError } from '../errors.ts';

/** id-kp-clientAuth, and anyExtendedKeyUsage which also permits it. */
const CLIENT_AUTH_OIDS = new Set(['1.3.6.1.5.5.7.3.2', '2.5.29.37.0']);

export const AUTHENTICATED_GROUP = 'system:authenticated';
export const ANONYMOUS_USER = 'system:anonymous';
export const UNAUTHENTICATED_GROUP = 'system:unauthenticated';
export const MASTERS_GROUP = 'system:masters';

/** The request-header (front-proxy) settings, as kube-apiserver names its flags. */
export interface RequestHeaderConfig {
  /** `--requestheader-allowed-names`; empty: any CN the CA signed. */
  allowedNames: readonly string[];
  /** `--requestheader-username-headers`, lower-case; the first non-empty one wins. */
  usernameHeaders: readonly string[];
  /** `--requestheader-group-headers`, lower-case; every value of every header is a group. */
  groupHeaders: readonly string[];
  /** `--requestheader-extra-headers-prefix`, lower-case. */
  extraHeaderPrefixes: readonly string[];
}

export const DEFAULT_REQUEST_HEADER_CONFIG: RequestHeaderConfig = {
  allowedNames: [],
  usernameHeaders: ['x-remote-user'],
  groupHeaders: ['x-remote-group'],
  extraHeaderPrefixes: ['x-remote-extra-'],
};

export interface UserInfo {
  name: string;
  groups: readonly string[];
  extra: Readonly<Record<string, readonly string[]>>;
  /** How the user was established, for logs and tests. */
  via: 'front-proxy' | 'client-certificate' | 'insecure-serving';
}

/** Certificates parsed from a PEM bundle (a CA file may hold several, e.g. during rotation). */
export class TrustAnchors {
  readonly certificates: readonly X509Certificate[];
  private readonly fingerprints: ReadonlySet<string>;

  constructor(certificates: readonly X509Certificate[]) {
    this.certificates = certificates;
    this.fingerprints = new Set(certificates.map((certificate) => certificate.fingerprint256));
  }

  /** Parses a PEM bundle; `source` names the file or flag in errors. */
  static fromPem(pem: string, source: string): TrustAnchors {
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) {
      throw new InvalidInputError(
        source,
        'holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----" blocks)',
      );
    }
    const certificates = blocks.map((block, index) => {
      try {
        return new X509Certificate(block);
      } catch (error) {
        throw new InvalidInputError(source, `certificate #${index + 1} does not parse: ${String(error)}`, {
          cause: error,
        });
      }
    });
    return new TrustAnchors(certificates);
  }

  get size(): number {
    return this.certificates.length;
  }

  /**
   * True when `chain` (leaf first, then what the peer presented) leads to one of these anchors:
   * each step must be issued by, and carry a signature that verifies with the key of, the next.
   * OpenSSL has already verified the chain against the union of all trusted CAs (dates, CA flags,
   * purpose); this tells which of the CA sets it chains to. Every certificate of the bundle is an
   * anchor, intermediates included, as in Go's CertPool.
   */
  issued(chain: readonly X509Certificate[]): boolean {
    const [leaf, ...presented] = chain;
    if (leaf === undefined) return false;
    let current = leaf;
    const used = new Set<X509Certificate>([leaf]);
    for (let depth = 0; depth <= presented.length; depth += 1) {
      if (this.fingerprints.has(current.fingerprint256)) return true;
      const anchor = this.certificates.find((candidate) => signedBy(current, candidate));
      if (anchor !== undefined) return true;
      const next = presented.find((candidate) => !used.has(candidate) && signedBy(current, candidate));
      if (next === undefined) return false;
      used.add(next);
      current = next;
    }
    return false;
  }
}

function signedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** What the TLS layer tells us about the peer of one connection. */
export interface PeerCertificates {
  /** OpenSSL verified the chain against the configured CAs (`socket.authorized`). */
  authorized: boolean;
  /** OpenSSL's reason when not authorized, e.g. `UNABLE_TO_VERIFY_LEAF_SIGNATURE`. */
  authorizationError?: string;
  /** Leaf first, then the certificates the peer sent or the store supplied. Empty: no certificate. */
  chain: readonly X509Certificate[];
  commonName?: string;
  organizations: readonly string[];
  /** Extended key usage OIDs of the leaf; undefined when the extension is absent. */
  extKeyUsage?: readonly string[];
  /**
   * False when the TLS handshake happened before the CA files last changed: `authorized` then
   * speaks for CAs that may have been removed, so only a path to a current CA counts.
   */
  verifiedWithCurrentCas?: boolean;
}

export function peerCertificatesOf(socket: TLSSocket): PeerCertificates {
  // An empty object when the peer sent no certificate.
  const leaf: Partial<DetailedPeerCertificate> = socket.getPeerCertificate(true);
  const authorizationError =
    socket.authorizationError === null ? undefined : String(socket.authorizationError);
  if (leaf.raw === undefined) {
    return {
      authorized: false,
      chain: [],
      organizations: [],
      ...(authorizationError ? { authorizationError } : {}),
    };
  }
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let current: DetailedPeerCertificate | undefined = leaf as DetailedPeerCertificate;
  while (current?.raw !== undefined && !seen.has(current.fingerprint256) && chain.length < 16) {
    seen.add(current.fingerprint256);
    chain.push(new X509Certificate(current.raw));
    current = current.issuerCertificate;
  }
  const subject = leaf.subject ?? {};
  const organizations = subject.O === undefined ? [] : Array.isArray(subject.O) ? subject.O : [subject.O];
  const commonName = Array.isArray(subject.CN) ? subject.CN[0] : subject.CN;
  return {
    authorized: socket.authorized,
    ...(authorizationError === undefined ? {} : { authorizationError }),
    chain,
    ...(commonName === undefined ? {} : { commonName }),
    organizations,
    ...(leaf.ext_key_usage === undefined ? {} : { extKeyUsage: leaf.ext_key_usage }),
  };
}

/** The trust configuration at one moment; replaced as a whole when the CA files rotate. */
export interface AuthenticationSettings {
  requestHeader?: { anchors: TrustAnchors; config: RequestHeaderConfig };
  clientCa?: TrustAnchors;
}

export type AuthenticationResult = { ok: true; user: UserInfo } | { ok: false; message: string };

/** Which trust path a verified certificate takes; cached per connection by the server. */
export type PeerClass =
  | { kind: 'front-proxy'; commonName: string }
  | { kind: 'client'; commonName: string; organizations: readonly string[] }
  | { kind: 'rejected'; message: string };

export function classifyPeer(peer: PeerCertificates, settings: AuthenticationSettings): PeerClass {
  if (peer.chain.length === 0) {
    return { kind: 'rejected', message: 'no client certificate was presented' };
  }
  if (!peer.authorized) {
    return {
      kind: 'rejected',
      message: `the client certificate was rejected (${peer.authorizationError ?? 'not signed by a trusted CA'})`,
    };
  }
  if (peer.extKeyUsage !== undefined && !peer.extKeyUsage.some((oid) => CLIENT_AUTH_OIDS.has(oid))) {
    return {
      kind: 'rejected',
      message: 'the client certificate does not allow client authentication (extended key usage)',
    };
  }
  const commonName = peer.commonName ?? '';
  const requestHeader = settings.requestHeader;
  let viaRequestHeader = requestHeader?.anchors.issued(peer.chain) ?? false;
  let viaClientCa = settings.clientCa?.issued(peer.chain) ?? false;
  if (!viaRequestHeader && !viaClientCa) {
    // OpenSSL verified the chain against the union of the CA files, but no path is visible: the
    // leaf was signed by an intermediate the client sent, and Node does not always hand a server
    // the peer's intermediates (nodejs/node#65579). With one CA file the path must end there.
    if (peer.verifiedWithCurrentCas === false) {
      return {
        kind: 'rejected',
        message: 'the client certificate was verified against CAs that have since been rotated',
      };
    }
    if (requestHeader !== undefined && settings.clientCa === undefined) viaRequestHeader = true;
    else if (requestHeader === undefined && settings.clientCa !== undefined) viaClientCa = true;
    else {
      return {
        kind: 'rejected',
        message:
          'the client certificate is signed by an intermediate CA that is in neither CA file; add the intermediate to --requestheader-client-ca-file or --client-ca-file',
      };
    }
  }
  // Authenticators in kube-apiserver's order: front proxy first, then x509 against the client CA.
  let rejection = 'the client certificate is not signed by a trusted CA';
  if (viaRequestHeader && requestHeader !== undefined) {
    const allowed = requestHeader.config.allowedNames;
    if (allowed.length === 0 || allowed.includes(commonName)) return { kind: 'front-proxy', commonName };
    rejection = `the front-proxy client certificate CN "${commonName}" is not one of --requestheader-allowed-names (${allowed.join(', ')})`;
  }
  if (viaClientCa) {
    if (commonName === '')
      return { kind: 'rejected', message: 'the client certificate has no common name (CN)' };
    return { kind: 'client', commonName, organizations: peer.organizations };
  }
  return { kind: 'rejected', message: rejection };
}

const NO_VALUES: readonly string[] = [];

function headerValues(
  headers: Readonly<Record<string, string[] | undefined>>,
  name: string,
): readonly string[] {
  return headers[name] ?? NO_VALUES;
}

/** Go's `url.PathUnescape`, falling back to the raw key as k8s.io/apiserver does. */
function unescapeExtraKey(encoded: string): string {
  if (!encoded.includes('%')) return encoded;
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
}

function withAuthenticatedGroup(groups: readonly string[]): string[] {
  return groups.includes(AUTHENTICATED_GROUP) ? [...groups] : [...groups, AUTHENTICATED_GROUP];
}

/** The first configured prefix `header` (lower-case) starts with. */
function extraPrefixOf(header: string, config: RequestHeaderConfig): string | undefined {
  for (const prefix of config.extraHeaderPrefixes) {
    if (header.startsWith(prefix)) return prefix;
  }
  return undefined;
}

/** True for a (lower-case) header name that carries an identity claim under `config`. */
export function isIdentityHeader(header: string, config: RequestHeaderConfig): boolean {
  return (
    config.usernameHeaders.includes(header) ||
    config.groupHeaders.includes(header) ||
    extraPrefixOf(header, config) !== undefined
  );
}

/**
 * The identity headers of a request from its raw header lines: what `headersDistinct` holds for
 * them (names lower-cased, every value of a repeated header kept, in order), without building the
 * other headers, which authentication never reads. Example: raw lines `X-Remote-Group: a`,
 * `Host: h`, `x-remote-group: b` give `{ "x-remote-group": ["a", "b"] }`.
 */
export function identityHeadersOf(
  rawHeaders: readonly string[],
  config: RequestHeaderConfig,
): Record<string, string[]> {
  const headers: Record<string, string[]> = {};
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    const header = (rawHeaders[index] ?? '').toLowerCase();
    if (!isIdentityHeader(header, config)) continue;
    const value = rawHeaders[index + 1] ?? '';
    const values = headers[header];
    if (values === undefined) headers[header] = [value];
    else values.push(value);
  }
  return headers;
}

/**
 * The user of one request, given its connection's class and its headers (`headersDistinct`, or
 * `identityHeadersOf`, so a repeated `X-Remote-Group` stays several groups instead of one
 * comma-joined string).
 */
export function authenticateRequest(
  peer: PeerClass,
  headers: Readonly<Record<string, string[] | undefined>>,
  settings: AuthenticationSettings,
): AuthenticationResult {
  if (peer.kind === 'rejected') return { ok: false, message: peer.message };
  if (peer.kind === 'client') {
    return {
      ok: true,
      user: {
        name: peer.commonName,
        groups: withAuthenticatedGroup(peer.organizations),
        extra: {},
        via: 'client-certificate',
      },
    };
  }
  const config = settings.requestHeader?.config ?? DEFAULT_REQUEST_HEADER_CONFIG;
  let name = '';
  for (const header of config.usernameHeaders) {
    const first = headerValues(headers, header)[0];
    if (first !== undefined && first.length > 0) {
      name = first;
      break;
    }
  }
  if (name === '') {
    return {
      ok: false,
      message: `the front-proxy request carries no user (${config.usernameHeaders.join(', ')})`,
    };
  }
  const groups: string[] = [];
  for (const header of config.groupHeaders) {
    for (const group of headerValues(headers, header)) groups.push(group);
  }
  if (!groups.includes(AUTHENTICATED_GROUP)) groups.push(AUTHENTICATED_GROUP);
  const extra: Record<string, string[]> = {};
  for (const header of Object.keys(headers)) {
    const values = headers[header];
    if (values === undefined) continue;
    const prefix = extraPrefixOf(header, config);
    if (prefix === undefined) continue;
    const key = unescapeExtraKey(header.slice(prefix.length).toLowerCase());
    const known = extra[key];
    extra[key] = known === undefined ? [...values] : [...known, ...values];
  }
  return { ok: true, user: { name, groups, extra, via: 'front-proxy' } };
}

/** Removes identity headers so nothing downstream can read an unverified claim. */
export function stripIdentityHeaders(headers: IncomingHttpHeaders, config: RequestHeaderConfig): void {
  for (const header of Object.keys(headers)) {
    if (isIdentityHeader(header.toLowerCase(), config)) delete headers[header];
  }
}

// ---------------------------------------------------------------------------------------------
// Authorization
// ---------------------------------------------------------------------------------------------

/** The authorizer attributes kube-apiserver would derive for the request (requestinfo.go). */
export type RequestAttributes =
  | {
      kind: 'resource';
      verb: 'get' | 'list';
      group: string;
      version: string;
      resource: string;
      subresource?: string;
      namespace?: string;
      name?: string;
    }
  | { kind: 'non-resource'; verb: string; path: string };

export type AuthorizationDecision = { allowed: true } | { allowed: false; reason?: string };

export interface Authorizer {
  authorize(
    user: UserInfo,
    attributes: RequestAttributes,
  ): AuthorizationDecision | Promise<AuthorizationDecision>;
}

/**
 * Allows every authenticated, non-anonymous user; `system:masters` always. A front proxy that
 * forwards `system:anonymous` gets 403: an anonymous caller has no business reading scaling data.
 */
export const authenticatedUsersAuthorizer: Authorizer = {
  authorize(user) {
    if (user.groups.includes(MASTERS_GROUP)) return { allowed: true };
    if (user.name === ANONYMOUS_USER || user.groups.includes(UNAUTHENTICATED_GROUP)) {
      return { allowed: false, reason: 'anonymous requests are not allowed' };
    }
    return { allowed: true };
  },
};

/** Derives attributes from a path the way k8s.io/apiserver's RequestInfoFactory does. */
export function requestAttributes(method: string, path: string): RequestAttributes {
  const verb = method === 'HEAD' ? 'get' : method.toLowerCase();
  const parts = path.split('/').filter((part) => part.length > 0);
  if (parts[0] !== 'apis' || parts.length < 4) return { kind: 'non-resource', verb, path };
  const [, group = '', version = '', ...rest] = parts;
  let namespace: string | undefined;
  let remainder = rest;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = decodeSegment(rest[1] ?? '');
    remainder = rest.slice(2);
  }
  const [resource = '', name, subresource] = remainder.map(decodeSegment);
  const resourceVerb: 'get' | 'list' = name === undefined ? 'list' : 'get';
  return {
    kind: 'resource',
    verb: resourceVerb,
    group,
    version,
    resource,
    ...(subresource === undefined ? {} : { subresource }),
    ...(namespace === undefined ? {} : { namespace }),
    ...(name === undefined ? {} : { name }),
  };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** kube-apiserver's wording (responsewriters.forbiddenMessage + errors.NewForbidden). */
export function forbiddenMessage(user: UserInfo, attributes: RequestAttributes, reason?: string): string {
  const suffix = reason === undefined || reason === '' ? '' : `: ${reason}`;
  if (attributes.kind === 'non-resource') {
    return `forbidden: User "${user.name}" cannot ${attributes.verb} path "${attributes.path}"${suffix}`;
  }
  const resource =
    attributes.subresource === undefined
      ? attributes.resource
      : `${attributes.resource}/${attributes.subresource}`;
  const scope =
    attributes.namespace === undefined
      ? 'at the cluster scope'
      : `in the namespace "${attributes.namespace}"`;
  const object = `${attributes.resource}.${attributes.group}${attributes.name === undefined ? '' : ` "${attributes.name}"`}`;
  return `${object} is forbidden: User "${user.name}" cannot ${attributes.verb} resource "${resource}" in API group "${attributes.group}" ${scope}${suffix}`;
}
