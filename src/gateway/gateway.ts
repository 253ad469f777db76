/**
 * The gateway as a unit: the proxy server on --listen, the metrics and health server on
 * --metrics-listen, and the shared token machinery. `start` loads the tokenizers the configured
 * models need before it listens (o200k_base takes about a second to build), so /readyz only
 * reports ready once counting is instant; `stop` drains in-flight requests, then closes.
 */
import http, { type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Registry } from 'prom-client';
import { CountCache } from '../tokens/count-cache.ts';
import { TokenizerRegistry } from '../tokens/encodings.ts';
import { ModelProfiles } from '../tokens/model-profiles.ts';
import { TokenCounter } from '../tokens/token-counter.ts';
import type { GatewayConfig } from './config.ts';
import { GatewayMetrics } from './metrics.ts';
import { ModelLabeler } from './model-labels.ts';
import { OutputStats } from './output-stats.ts';
import { errorBody, type GatewayLogger, MeteringProxy } from './proxy.ts';

export interface GatewayAddresses {
  /** e.g. http://127.0.0.1:8080 */
  proxyUrl: string;
  metricsUrl: string;
}

export interface GatewayOptions {
  config: GatewayConfig;
  logger: GatewayLogger;
  /** A registry for this gateway (tests pass a fresh one; the CLI adds process metrics to it). */
  registry?: Registry;
  /** Shared tokenizers (tests and benchmarks reuse one; each builds in about a second). */
  tokenizers?: TokenizerRegistry;
  nowMs?: () => number;
}

function urlOf(server: Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export class Gateway {
  readonly registry: Registry;
  readonly metrics: GatewayMetrics;
  readonly counter: TokenCounter;
  readonly #config: GatewayConfig;
  readonly #logger: GatewayLogger;
  readonly #tokenizers: TokenizerRegistry;
  readonly #profiles: ModelProfiles;
  readonly #proxy: MeteringProxy;
  readonly #proxyServer: Server;
  readonly #adminServer: Server;
  readonly #sockets = new Set<Socket>();
  #ready = false;
  #stopping = false;

  constructor(options: GatewayOptions) {
    const { config } = options;
    this.#config = config;
    this.#logger = options.logger;
    this.registry = options.registry ?? new Registry();
    this.#tokenizers = options.tokenizers ?? new TokenizerRegistry();
    this.#profiles = new ModelProfiles(config.modelProfiles, config.defaultEncoding);
    this.counter = new TokenCounter({ cache: new CountCache(config.countCacheEntries) });
    this.metrics = new GatewayMetrics(this.registry, this.counter.cache);
    this.#proxy = new MeteringProxy({
      config,
      metrics: this.metrics,
      tokenizers: this.#tokenizers,
      counter: this.counter,
      profiles: this.#profiles,
      labeler: new ModelLabeler({ allowList: config.models, maxLabels: config.maxModelLabels }),
      outputStats: new OutputStats(),
      logger: options.logger,
      nowMs: options.nowMs ?? (() => performance.now()),
    });
    this.#proxyServer = http.createServer(
      {
        maxHeaderSize: config.maxHeaderBytes,
        requestTimeout: config.bodyTimeoutSeconds * 1000,
        headersTimeout: Math.min(config.bodyTimeoutSeconds * 1000, 60_000),
        keepAliveTimeout: 65_000,
      },
      this.#proxy.handle,
    );
    this.#proxyServer.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#proxyServer.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) =>
      this.#clientError(error, socket),
    );
    this.#adminServer = http.createServer((req, res) => void this.#admin(req, res));
  }

  get ready(): boolean {
    return this.#ready && !this.#stopping;
  }

  async start(): Promise<GatewayAddresses> {
    await Promise.all(this.#profiles.encodingsInUse().map((e) => this.#tokenizers.load(e)));
    await listen(this.#adminServer, this.#config.metricsListen.host, this.#config.metricsListen.port);
    await listen(this.#proxyServer, this.#config.listen.host, this.#config.listen.port);
    this.#ready = true;
    const addresses = { proxyUrl: urlOf(this.#proxyServer), metricsUrl: urlOf(this.#adminServer) };
    this.#logger.info('gateway listening', { ...addresses, upstream: this.#config.upstream });
    return addresses;
  }

  /**
   * Stops accepting connections, reports not ready, lets in-flight requests finish for up to
   * drainTimeoutSeconds, then closes every connection and the metrics server.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    const closed = new Promise<void>((resolve) => this.#proxyServer.close(() => resolve()));
    this.#proxyServer.closeIdleConnections();
    const deadline = performance.now() + this.#config.drainTimeoutSeconds * 1000;
    while (this.#proxy.activeRequests > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      this.#proxyServer.closeIdleConnections();
    }
    if (this.#proxy.activeRequests > 0) {
      this.#logger.warn('drain timeout: closing connections with requests in flight', {
        activeRequests: this.#proxy.activeRequests,
      });
    }
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    this.#proxy.close();
    await new Promise<void>((resolve) => {
      this.#adminServer.close(() => resolve());
      this.#adminServer.closeAllConnections();
    });
    this.#logger.info('gateway stopped');
  }

  /** Oversized headers (431) and malformed requests (400) get a JSON error, like every other refusal. */
  #clientError(error: NodeJS.ErrnoException, socket: Socket): void {
    if (!socket.writable || (error.code === 'ECONNRESET' && socket.bytesWritten === 0)) {
      socket.destroy();
      return;
    }
    let status = 400;
    let body = errorBody('malformed HTTP request', 'invalid_request_error', 'bad_request');
    if (error.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      body = errorBody(
        `request headers are larger than this gateway's limit of ${this.#config.maxHeaderBytes} bytes (--max-header-bytes)`,
        'invalid_request_error',
        'headers_too_large',
      );
    } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      body = errorBody('request not received in time', 'invalid_request_error', 'request_timeout');
    }
    this.metrics.requestsTotal.inc({ model: 'unknown', endpoint: 'other', code: String(status) });
    const reason = http.STATUS_CODES[status] ?? 'Error';
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }

  async #admin(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      try {
        const text = await this.registry.metrics();
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(text);
      } catch (error) {
        this.#logger.error('metrics collection failed', { error });
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      }
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const ready = this.ready;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ok\n' : 'not ready\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
}
