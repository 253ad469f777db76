/** Small HTTP and Prometheus-text helpers for the gateway integration tests and benchmarks. */
import http from 'node:http';
import { Registry } from 'prom-client';
import { type GatewayConfigInput, GatewayConfigSchema } from '../src/gateway/config.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import type { TokenizerRegistry } from '../src/tokens/encodings.ts';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export function httpRequest(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    agent?: http.Agent;
    /** Sends the body with chunked transfer encoding (no content-length). */
    chunked?: boolean;
  } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined && options.chunked !== true) {
      headers['content-length'] = String(Buffer.byteLength(options.body));
    }
    const req = http.request(
      url,
      { method: options.method ?? 'GET', headers, agent: options.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

export function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  agent?: http.Agent,
) {
  return httpRequest(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    ...(agent === undefined ? {} : { agent }),
  });
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the sample lines of Prometheus text format (comments skipped). */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    samples.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return samples;
}

function matches(sample: Sample, name: string, labels: Record<string, string>): boolean {
  return sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v);
}

/** Value of the first series of a metric whose labels include `labels`, or undefined when absent. */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return parseSamples(text).find((s) => matches(s, name, labels))?.value;
}

/** Sum of a metric over all series whose labels include `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  return parseSamples(text)
    .filter((s) => matches(s, name, labels))
    .reduce((sum, s) => sum + s.value, 0);
}

export async function scrape(metricsUrl: string): Promise<string> {
  const res = await httpRequest(`${metricsUrl}/metrics`);
  if (res.status !== 200) throw new Error(`scrape failed: ${res.status}`);
  return res.body.toString('utf8');
}

export async function startGateway(
  upstream: string,
  overrides: Partial<GatewayConfigInput> = {},
  tokenizers?: TokenizerRegistry,
): Promise<{ gateway: Gateway; proxyUrl: string; metricsUrl: string; logs: string[] }> {
  const config = GatewayConfigSchema.parse({
    upstream,
    listen: '127.0.0.1:0',
    metricsListen: '127.0.0.1:0',
    drainTimeoutSeconds: 2,
    ...overrides,
  });
  const logs: string[] = [];
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    logs.push(JSON.stringify({ level, message, ...fields }));
  const gateway = new Gateway({
    config,
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
    registry: new Registry(),
    ...(tokenizers === undefined ? {} : { tokenizers }),
  });
  const { proxyUrl, metricsUrl } = await gateway.start();
  return { gateway, proxyUrl, metricsUrl, logs };
}

/** Polls until the check passes (bounded), for gauges that settle asynchronously. */
export async function eventually(check: () => Promise<void> | void, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
