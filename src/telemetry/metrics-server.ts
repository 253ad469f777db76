import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { InvalidInputError, TokenscalerError } from '../errors.ts';

/**
 * Plain-HTTP /metrics for Prometheus (the controller's own metrics), on its own port
 * (`--metrics-bind-address`, default :8080) so scraping never needs the metrics API's client
 * certificates. Anything else answers 404.
 */
export interface RunningMetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

export function parseListenAddress(flag: string, value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = match === null ? Number.NaN : Number(match[3]);
  if (match === null || port > 65535) {
    throw new InvalidInputError(
      `--${flag}`,
      `${JSON.stringify(value)} is not allowed; expected HOST:PORT or :PORT with a port from 0 to 65535, e.g. :8080 or 127.0.0.1:8080`,
    );
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

export async function startMetricsServer(
  registry: Registry,
  listen: { host: string; port: number },
): Promise<RunningMetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if ((request.method === 'GET' || request.method === 'HEAD') && path === '/metrics') {
      registry.metrics().then(
        (text) =>
          response
            .writeHead(200, { 'content-type': registry.contentType })
            .end(request.method === 'HEAD' ? undefined : text),
        (error: unknown) =>
          response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`),
      );
      return;
    }
    response
      .writeHead(404, { 'content-type': 'text/plain' })
      .end('not found: the controller serves /metrics here\n');
  });
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new TokenscalerError(
          'METRICS_LISTEN_FAILED',
          `cannot listen on ${listen.host}:${listen.port}: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/metrics`,
    close: async () => {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
