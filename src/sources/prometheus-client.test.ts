import { describe, expect, it } from 'vitest';
import type { MetricsSourceError } from './errors.ts';
import { PrometheusClient } from './prometheus-client.ts';

type Handler = (body: URLSearchParams, url: string) => Response | Promise<Response>;

function client(handler: Handler, timeoutSeconds = 2) {
  const calls: { url: string; body: URLSearchParams; headers: Headers }[] = [];
  const c = new PrometheusClient({
    url: 'http://user:secret@prometheus:9090/prom',
    timeoutSeconds,
    headers: { authorization: 'Bearer t' },
    fetch: async (url, init) => {
      const body = new URLSearchParams(String(init.body));
      calls.push({ url, body, headers: new Headers(init.headers) });
      return handler(body, url);
    },
  });
  return { c, calls };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

async function failure(promise: Promise<unknown>): Promise<MetricsSourceError> {
  try {
    await promise;
  } catch (error) {
    return error as MetricsSourceError;
  }
  throw new Error('expected a failure');
}

describe('PrometheusClient.instantQuery', () => {
  it('POSTs the query with a server-side timeout below ours, keeping the path prefix', async () => {
    const { c, calls } = client(() =>
      json(200, { status: 'success', data: { resultType: 'vector', result: [] } }),
    );
    await c.instantQuery('up');
    expect(calls[0]?.url).toBe('http://user:secret@prometheus:9090/prom/api/v1/query');
    expect(calls[0]?.body.get('query')).toBe('up');
    expect(calls[0]?.body.get('timeout')).toBe('1750ms');
    expect(calls[0]?.headers.get('authorization')).toBe('Bearer t');
  });

  it('returns vector samples and drops NaN and infinities (no data, never zero)', async () => {
    const { c } = client(() =>
      json(200, {
        status: 'success',
        data: {
          resultType: 'vector',
          result: [
            { metric: { instance: 'a' }, value: [1700000000, '12.5'] },
            { metric: { instance: 'b' }, value: [1700000000, 'NaN'] },
            { metric: { instance: 'c' }, value: [1700000000, '+Inf'] },
            { metric: { instance: 'd' }, value: [1700000000, '0'] },
          ],
        },
        warnings: ['PromQL info: metric might not be a counter'],
      }),
    );
    const result = await c.instantQuery('x');
    expect(result.samples).toEqual([
      { labels: { instance: 'a' }, value: 12.5 },
      { labels: { instance: 'd' }, value: 0 },
    ]);
    expect(result.warnings).toEqual(['PromQL info: metric might not be a counter']);
  });

  it('reads scalars', async () => {
    const { c } = client(() =>
      json(200, { status: 'success', data: { resultType: 'scalar', result: [1, '3'] } }),
    );
    expect((await c.instantQuery('3')).samples).toEqual([{ labels: {}, value: 3 }]);
  });

  it.each([
    [
      'a Prometheus error body',
      () => json(400, { status: 'error', errorType: 'bad_data', error: '1:5: parse error: unexpected "}"' }),
      'PROMETHEUS_QUERY_FAILED',
      /Prometheus rejected "sum\(x\{\]": bad_data: 1:5: parse error: unexpected "}"/,
    ],
    [
      'an execution timeout inside Prometheus',
      () =>
        json(503, {
          status: 'error',
          errorType: 'timeout',
          error: 'query timed out in expression evaluation',
        }),
      'PROMETHEUS_QUERY_FAILED',
      /timeout: query timed out/,
    ],
    [
      'HTML from a proxy',
      () => new Response('<html>502 Bad Gateway</html>', { status: 502 }),
      'PROMETHEUS_UNREACHABLE',
      /^http:\/\/prometheus:9090\/prom: HTTP 502 with a body that is not JSON \(<html>502 Bad Gateway<\/html>\); is this a Prometheus server\?$/,
    ],
    [
      'a body that is not the Prometheus API',
      () =>
        json(200, {
          status: 'success',
          data: { resultType: 'vector', result: [{ metric: {}, value: 'x' }] },
        }),
      'PROMETHEUS_BAD_RESPONSE',
      /does not match the Prometheus API/,
    ],
    [
      'a range result',
      () => json(200, { status: 'success', data: { resultType: 'matrix', result: [] } }),
      'PROMETHEUS_BAD_RESPONSE',
      /returned a matrix; an instant vector or scalar is needed/,
    ],
    [
      'a refused connection',
      () => {
        throw new TypeError('fetch failed', {
          cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
        });
      },
      'PROMETHEUS_UNREACHABLE',
      /ECONNREFUSED/,
    ],
  ])('surfaces %s', async (_title, respond, code, message) => {
    const { c } = client(respond);
    const error = await failure(c.instantQuery('sum(x{]'));
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('secret');
  });

  it('refuses an answer larger than its limit', async () => {
    const big = new PrometheusClient({
      url: 'http://prometheus:9090',
      timeoutSeconds: 2,
      maxResponseBytes: 1000,
      fetch: async () =>
        json(200, {
          status: 'success',
          data: {
            resultType: 'vector',
            result: Array.from({ length: 100 }, (_, i) => ({ metric: { i: String(i) }, value: [1, '1'] })),
          },
        }),
    });
    const error = await failure(big.instantQuery('{__name__=~".+"}'));
    expect(error.code).toBe('PROMETHEUS_BAD_RESPONSE');
    expect(error.message).toMatch(/body too large \(.*; the limit is 1000 bytes\)/);
  });

  it('gives up at its deadline', async () => {
    // Rejects on abort, as fetch does.
    const slow = new PrometheusClient({
      url: 'http://prometheus:9090',
      timeoutSeconds: 0.2,
      fetch: (_url, init) =>
        new Promise<Response>((_resolve, reject) => {
          init.signal?.addEventListener('abort', () => reject(init.signal?.reason));
        }),
    });
    const error = await failure(slow.instantQuery('up'));
    expect(error.code).toBe('PROMETHEUS_TIMEOUT');
    expect(error.message).toBe('http://prometheus:9090: no answer within 0.2 s');
  });
});
