import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DemoFleet } from './fleet.ts';

/**
 * Serves each simulated replica's vLLM metrics at http://127.0.0.1:<port>/replicas/<id>/metrics, the
 * way each pod of a real Deployment serves its own /metrics. `endpoints()` lists the URLs of the
 * replicas that serve now: the demo's pod discovery.
 */
export class FleetMetricsServer {
  readonly #fleet: DemoFleet;
  readonly #server: Server;
  #port = 0;

  constructor(fleet: DemoFleet) {
    this.#fleet = fleet;
    this.#server = createServer((request, response) => {
      const match = /^\/replicas\/(\d+)\/metrics$/.exec(request.url ?? '');
      const endpoint =
        match === null ? undefined : this.#fleet.endpoints().find((e) => e.id === Number(match[1]));
      if (request.method !== 'GET' || endpoint === undefined) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      endpoint.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': endpoint.registry.contentType }).end(text),
        (error: unknown) =>
          response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`),
      );
    });
  }

  async listen(host = '127.0.0.1'): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, host, () => resolve());
    });
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  endpoints(): string[] {
    return this.#fleet.endpoints().map((e) => `http://127.0.0.1:${this.#port}/replicas/${e.id}/metrics`);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
