/**
 * @module api/server
 *
 * Starts and stops the metrics API server: HTTPS with client-certificate authentication (or, only
 * with `--insecure-serving`, plain HTTP without any), serving material reloaded when its files
 * change, and a graceful drain on close so an HPA sync in flight gets its answer.
 *
 * TLS is set up as reference/external-metrics-contract.md §4.3 asks: the server requests a client
 * certificate but does not fail the handshake without one (kubelet probes present none), trusts the
 * union of the front-proxy and client CAs at the TLS layer, and decides per connection which of
 * them issued the peer's certificate.
 */
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { TokenscalerError } from '../errors.ts';
import type { ApiLogger, Readiness } from './app.ts';
import type { AuthenticationResult, Authorizer, PeerClass, RequestHeaderConfig } from './auth.ts';
import {
  AUTHENTICATED_GROUP,
  authenticatedUsersAuthorizer,
  authenticateRequest,
  classifyPeer,
  DEFAULT_REQUEST_HEADER_CONFIG,
  identityHeadersOf,
  MASTERS_GROUP,
  peerCertificatesOf,
} from './auth.ts';
import type { DecisionStore } from './decision-store.ts';
import { createApiRequestListener } from './fast-path.ts';
import type { MaterialSource, PreparedMaterial, ServingFiles } from './material.ts';
import { fileMaterialSource, materialFingerprint, prepareMaterial } from './material.ts';
import type { ApiMetrics } from './metrics.ts';

export interface ApiServerOptions {
  /** `--bind-address`. */
  bindAddress: string;
  /** `--secure-port`; 0 picks a free port (tests). */
  port: number;
  /** `--insecure-serving`: plain HTTP, no authentication. For a local demo only. */
  insecureServing: boolean;
  /** Required unless `insecureServing`; ignored when `deps.material` is given. */
  tls?: ServingFiles;
  /** `--requestheader-*` flags. */
  requestHeader: RequestHeaderConfig;
  /** How often the material is re-read to pick up rotated files. */
  reloadIntervalSeconds: number;
  /** After close() starts, /readyz fails for this long before the listener stops (endpoint removal). */
  shutdownDelaySeconds: number;
  /** How long close() waits for requests in flight before cutting connections. */
  drainTimeoutSeconds: number;
}

export const DEFAULT_API_SERVER_OPTIONS: ApiServerOptions = {
  bindAddress: '0.0.0.0',
  port: 6443,
  insecureServing: false,
  requestHeader: DEFAULT_REQUEST_HEADER_CONFIG,
  reloadIntervalSeconds: 10,
  shutdownDelaySeconds: 0,
  drainTimeoutSeconds: 10,
};

export interface ApiServerDeps {
  store: DecisionStore;
  logger: ApiLogger;
  /** Default: every authenticated, non-anonymous user (kube-apiserver already ran RBAC when proxying). */
  authorizer?: Authorizer;
  /** Default: the files of `options.tls`. */
  material?: MaterialSource;
  metrics?: ApiMetrics;
  /** More reasons to be unready, e.g. cluster mode's list/watch health; consulted after the store. */
  readiness?: () => Readiness;
}

export interface RunningApiServer {
  /** Base URL, e.g. `https://127.0.0.1:6443`. */
  readonly url: string;
  readonly port: number;
  /** Re-reads the material now; resolves to true when it changed and was applied. */
  reload(): Promise<boolean>;
  /** Fails /readyz, waits the shutdown delay, stops accepting, drains requests in flight. Idempotent. */
  close(): Promise<void>;
}

/** Listening failed (port in use, address not available). */
export class ApiListenError extends TokenscalerError {
  constructor(address: string, port: number, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('API_LISTEN_FAILED', `cannot listen on ${address}:${port}: ${reason}`, { cause });
    this.name = 'ApiListenError';
  }
}

const LOAD_TIMEOUT_MS = 5_000;
const NO_HEADERS: Readonly<Record<string, string[]>> = {};

/** The identity of every request under --insecure-serving: all-powerful, because nothing is checked. */
const INSECURE_USER = {
  name: 'system:insecure-serving',
  groups: [MASTERS_GROUP, AUTHENTICATED_GROUP],
  extra: {},
  via: 'insecure-serving' as const,
};

export async function startApiServer(
  options: ApiServerOptions,
  deps: ApiServerDeps,
): Promise<RunningApiServer> {
  const { logger } = deps;
  let draining = false;
  let prepared: PreparedMaterial | undefined;
  /** Bumped on every applied reload, so cached per-connection classes are recomputed. */
  let generation = 0;
  /** Bumped when the CA files (or allowed names) change: handshakes before it vouch for old CAs. */
  let trustGeneration = 0;
  const peerClasses = new WeakMap<TLSSocket, { generation: number; peer: PeerClass }>();
  const handshakeTrust = new WeakMap<TLSSocket, number>();

  const material = deps.material ?? (options.tls === undefined ? undefined : fileMaterialSource(options.tls));
  if (!options.insecureServing) {
    if (material === undefined) {
      throw new TokenscalerError(
        'API_NO_TLS',
        '--tls-cert-file and --tls-private-key-file are required (or --insecure-serving for a local demo)',
      );
    }
    prepared = prepareMaterial(
      await material.load(AbortSignal.timeout(LOAD_TIMEOUT_MS)),
      options.requestHeader,
    );
    deps.metrics?.setCertificateExpiry(prepared.certificateNotAfterSeconds);
  }

  const authenticate = (request: IncomingMessage): AuthenticationResult => {
    if (options.insecureServing) return { ok: true, user: INSECURE_USER };
    const current = prepared;
    if (current === undefined) return { ok: false, message: 'the server has no serving material' };
    const socket = request.socket as TLSSocket;
    let cached = peerClasses.get(socket);
    if (cached === undefined || cached.generation !== generation) {
      const peer = {
        ...peerCertificatesOf(socket),
        verifiedWithCurrentCas: handshakeTrust.get(socket) === trustGeneration,
      };
      cached = { generation, peer: classifyPeer(peer, current.authentication) };
      peerClasses.set(socket, cached);
    }
    // Only a front-proxy connection's identity headers are read; skip building the others.
    const headers =
      cached.peer.kind === 'front-proxy'
        ? identityHeadersOf(
            request.rawHeaders,
            current.authentication.requestHeader?.config ?? DEFAULT_REQUEST_HEADER_CONFIG,
          )
        : NO_HEADERS;
    return authenticateRequest(cached.peer, headers, current.authentication);
  };

  const readiness = (): Readiness => {
    if (draining) return { ready: false, reason: 'shutting down' };
    if (!deps.store.synced())
      return { ready: false, reason: 'no decisions yet (the first reconcile pass is running)' };
    return deps.readiness?.() ?? { ready: true };
  };

  // The polled metric reads take the fast path; everything else goes through the express app.
  const listener = createApiRequestListener({
    store: deps.store,
    authenticate,
    authorizer: deps.authorizer ?? authenticatedUsersAuthorizer,
    readiness,
    logger,
    requestHeader: () => prepared?.requestHeader ?? options.requestHeader,
    ...(deps.metrics === undefined ? {} : { metrics: deps.metrics }),
    isDraining: () => draining,
  });

  let server: HttpServer | HttpsServer;
  if (options.insecureServing) {
    server = createHttpServer(listener);
  } else {
    server = createHttpsServer(
      {
        ...prepared?.secureContext,
        // Ask for a certificate, never fail the handshake over it: probes present none, and a
        // Status 401 explains more than a TLS alert.
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
        handshakeTimeout: 10_000,
      },
      listener,
    );
  }
  // kube-apiserver and the HPA poll every 15 s over pooled connections: keep them open between
  // polls (a TLS handshake per poll costs more than the answer), and close idle ones after a minute.
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  server.requestTimeout = 70_000;
  server.on('secureConnection', (socket: TLSSocket) => handshakeTrust.set(socket, trustGeneration));
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code !== 'ECONNRESET' && socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: unknown) => {
      server.off('listening', onListening);
      reject(new ApiListenError(options.bindAddress, options.port, error));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options.port, options.bindAddress);
  });
  server.on('error', (error) => logger.error('metrics API server error', { error }));

  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${options.insecureServing ? 'http' : 'https'}://${host}:${address.port}`;
  if (options.insecureServing) {
    logger.warn(
      'INSECURE SERVING: the metrics APIs are served over plain HTTP WITHOUT authentication; anyone who can reach this address reads every scaler. Use --insecure-serving only for a local demo, never in a cluster.',
      { url },
    );
  } else {
    logger.info('metrics API serving', {
      url,
      certificate: prepared?.certificateSubject,
      certificateNotAfter: new Date((prepared?.certificateNotAfterSeconds ?? 0) * 1000).toISOString(),
      frontProxyAuthentication: prepared?.authentication.requestHeader !== undefined,
      clientCertificateAuthentication: prepared?.authentication.clientCa !== undefined,
      requestHeaderAllowedNames: prepared?.requestHeader.allowedNames,
    });
  }

  let reloading: Promise<boolean> | undefined;
  const reloadOnce = async (): Promise<boolean> => {
    if (options.insecureServing || material === undefined || !('setSecureContext' in server)) return false;
    const httpsServer = server;
    try {
      const loaded = await material.load(AbortSignal.timeout(LOAD_TIMEOUT_MS));
      if (materialFingerprint(loaded) === prepared?.fingerprint) return false;
      const next = prepareMaterial(loaded, options.requestHeader);
      httpsServer.setSecureContext(next.secureContext);
      const trustChanged = next.trustFingerprint !== prepared?.trustFingerprint;
      prepared = next;
      generation += 1;
      if (trustChanged) {
        trustGeneration += 1;
        // Idle keep-alive connections were verified against the old CAs: make clients reconnect.
        httpsServer.closeIdleConnections();
      }
      deps.metrics?.observeReload('success');
      deps.metrics?.setCertificateExpiry(next.certificateNotAfterSeconds);
      logger.info('reloaded serving certificate and client CAs', {
        certificate: next.certificateSubject,
        certificateNotAfter: new Date(next.certificateNotAfterSeconds * 1000).toISOString(),
      });
      return true;
    } catch (error) {
      // Keep serving with what we have: a half-written file during rotation must not take us down.
      deps.metrics?.observeReload('failure');
      logger.error('cannot reload serving material; keeping the previous one', {
        source: material.describe(),
        error,
      });
      return false;
    }
  };
  const reload = (): Promise<boolean> => {
    reloading ??= reloadOnce().finally(() => {
      reloading = undefined;
    });
    return reloading;
  };
  const timer =
    options.insecureServing || options.reloadIntervalSeconds <= 0
      ? undefined
      : setInterval(() => void reload(), options.reloadIntervalSeconds * 1000);
  timer?.unref();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      if (timer !== undefined) clearInterval(timer);
      if (options.shutdownDelaySeconds > 0) {
        logger.info('metrics API draining: /readyz fails, still serving', {
          shutdownDelaySeconds: options.shutdownDelaySeconds,
        });
        await delay(options.shutdownDelaySeconds * 1000);
      }
      await reloading;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let forced = false;
      const deadline = delay(options.drainTimeoutSeconds * 1000).then(() => {
        forced = true;
      });
      await Promise.race([closed, deadline]);
      if (forced) {
        logger.warn('metrics API drain timed out; closing remaining connections', {
          drainTimeoutSeconds: options.drainTimeoutSeconds,
        });
        server.closeAllConnections();
        await closed;
      }
      logger.info('metrics API stopped', { url });
    })();
    return closing;
  };

  return { url, port: address.port, reload, close };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
