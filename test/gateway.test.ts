/**
 * The real gateway against a fake OpenAI-compatible upstream on 127.0.0.1: pass-through exactness,
 * streaming with and without include_usage, cancellation, errors, limits, policies, and the metric
 * values as Prometheus would scrape them.
 */
import http from 'node:http';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway/gateway.ts';
import { TokenizerRegistry } from '../src/tokens/encodings.ts';
import { FakeUpstream } from './gateway-fake-upstream.ts';
import {
  eventually,
  httpRequest,
  metricSum,
  metricValue,
  postJson,
  scrape,
  startGateway,
} from './gateway-helpers.ts';

const tokenizers = new TokenizerRegistry();
const upstream = new FakeUpstream();
let running: { gateway: Gateway; proxyUrl: string; metricsUrl: string } | undefined;

beforeAll(async () => {
  await upstream.start();
});

afterAll(async () => {
  await upstream.stop();
});

afterEach(async () => {
  await running?.gateway.stop();
  running = undefined;
});

async function gateway(overrides = {}) {
  running = await startGateway(upstream.url, overrides, tokenizers);
  return running;
}

const chatBody = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'gpt-4o',
  max_tokens: 12,
  messages: [
    { role: 'system', content: 'You are a capacity planner. Answer in one sentence.' },
    { role: 'user', content },
  ],
  ...extra,
});

async function expectGaugesAtZero(metricsUrl: string) {
  await eventually(async () => {
    const text = await scrape(metricsUrl);
    expect(metricSum(text, 'tokenscaler_gateway_inflight_requests')).toBe(0);
    expect(metricSum(text, 'tokenscaler_gateway_inflight_tokens')).toBe(0);
    expect(metricSum(text, 'tokenscaler_gateway_waiting_tokens')).toBe(0);
  });
}

describe('gateway metrics contract', () => {
  it('exposes the DESIGN.md names, types and model label on the metrics port only', async () => {
    const gw = await gateway();
    await postJson(`${gw.proxyUrl}/v1/chat/completions`, chatBody('How many replicas?'));
    const text = await scrape(gw.metricsUrl);
    const types: Record<string, string> = {
      tokenscaler_gateway_inflight_requests: 'gauge',
      tokenscaler_gateway_inflight_tokens: 'gauge',
      tokenscaler_gateway_waiting_tokens: 'gauge',
      tokenscaler_gateway_request_input_tokens: 'histogram',
      tokenscaler_gateway_request_output_tokens: 'histogram',
      tokenscaler_gateway_tokens_total: 'counter',
    };
    for (const [name, type] of Object.entries(types)) {
      expect(text).toContain(`# TYPE ${name} ${type}`);
      const sample = type === 'histogram' ? `${name}_count` : name;
      expect(metricValue(text, sample, { model: 'gpt-4o' }), name).toBeDefined();
    }
    expect(
      metricValue(text, 'tokenscaler_gateway_tokens_total', {
        model: 'gpt-4o',
        type: 'input',
        component: 'system',
      }),
    ).toBeGreaterThan(0);
    // The proxied port forwards /metrics to the upstream (engines have their own); the gateway's is separate.
    const proxied = await httpRequest(`${gw.proxyUrl}/metrics`);
    expect(proxied.body.toString()).not.toContain('tokenscaler_gateway');
    expect((await httpRequest(`${gw.metricsUrl}/healthz`)).status).toBe(200);
    expect((await httpRequest(`${gw.metricsUrl}/readyz`)).status).toBe(200);
  });
});

describe('non-streaming', () => {
  it('passes the response through unchanged and takes counts from the upstream usage', async () => {
    const gw = await gateway();
    const body = chatBody('Size a fleet for 40 requests per second of 2,000-token prompts.');
    const direct = await postJson(`${upstream.url}/v1/chat/completions`, body);
    const proxied = await postJson(`${gw.proxyUrl}/v1/chat/completions`, body);
    expect(proxied.status).toBe(200);
    expect(proxied.body.equals(direct.body)).toBe(true);
    const usage = JSON.parse(direct.body.toString()).usage;
    const text = await scrape(gw.metricsUrl);
    expect(metricValue(text, 'tokenscaler_gateway_request_input_tokens_sum', { model: 'gpt-4o' })).toBe(
      usage.prompt_tokens,
    );
    expect(metricValue(text, 'tokenscaler_gateway_request_output_tokens_sum', { model: 'gpt-4o' })).toBe(
      usage.completion_tokens,
    );
    expect(metricSum(text, 'tokenscaler_gateway_tokens_total', { model: 'gpt-4o', type: 'input' })).toBe(
      usage.prompt_tokens,
    );
    expect(
      metricValue(text, 'tokenscaler_gateway_usage_source_total', { model: 'gpt-4o', source: 'upstream' }),
    ).toBe(1);
    expect(
      metricValue(text, 'tokenscaler_gateway_requests_total', {
        model: 'gpt-4o',
        endpoint: 'chat',
        code: '200',
      }),
    ).toBe(1);
    await expectGaugesAtZero(gw.metricsUrl);
  });

  it('counts exactly what the upstream would report when it reports nothing (same tokenizer)', async () => {
    const gw = await gateway();
    const prompts = [
      'Plain English question about KV cache sizing?',
      'Question en français: combien de répliques faut-il?',
      '質問：レプリカはいくつ必要ですか？',
      'JSON: {"qps": 40, "prompt_tokens": [2000, 4000], "ok": true} and emoji 🚀🔥',
      'def replicas(demand, per_replica):\n    return -(-demand // per_replica)\n',
    ];
    let expectedInput = 0;
    let expectedOutput = 0;
    for (const prompt of prompts) {
      const res = await postJson(`${gw.proxyUrl}/v1/chat/completions`, chatBody(prompt), {
        'x-fake': 'no-usage',
      });
      expect(res.status).toBe(200);
      const seen = upstream.received.at(-1);
      expectedInput += seen?.promptTokens ?? Number.NaN;
      expectedOutput += seen?.completionTokens ?? Number.NaN;
    }
    await eventually(async () => {
      const text = await scrape(gw.metricsUrl);
      expect(
        metricValue(text, 'tokenscaler_gateway_usage_source_total', { model: 'gpt-4o', source: 'gateway' }),
      ).toBe(5);
      expect(metricValue(text, 'tokenscaler_gateway_request_input_tokens_sum', { model: 'gpt-4o' })).toBe(
        expectedInput,
      );
      expect(metricValue(text, 'tokenscaler_gateway_request_output_tokens_sum', { model: 'gpt-4o' })).toBe(
        expectedOutput,
      );
    });
  });

  it('meters embeddings as input only', async () => {
    const gw = await gateway();
    const res = await postJson(`${gw.proxyUrl}/v1/embeddings`, {
      model: 'text-embedding-3-small',
      input: 'embed this sentence',
    });
    expect(res.status).toBe(200);
    const usage = JSON.parse(res.body.toString()).usage;
    await eventually(async () => {
      const text = await scrape(gw.metricsUrl);
      const model = { model: 'text-embedding-3-small' };
      expect(metricValue(text, 'tokenscaler_gateway_request_input_tokens_sum', model)).toBe(
        usage.prompt_tokens,
      );
      expect(metricValue(text, 'tokenscaler_gateway_request_output_tokens_count', model)).toBeUndefined();
      expect(
        metricValue(text, 'tokenscaler_gateway_requests_total', {
          ...model,
          endpoint: 'embeddings',
          code: '200',
        }),
      ).toBe(1);
    });
  });

  it('reads usage from a gzip-compressed response and forwards the compressed bytes', async () => {
    const gw = await gateway();
    const body = chatBody('compressed please');
    const proxied = await postJson(`${gw.proxyUrl}/v1/chat/completions`, body, { 'x-fake': 'gzip' });
    expect(proxied.headers['content-encoding']).toBe('gzip');
    const usage = JSON.parse(zlib.gunzipSync(proxied.body).toString()).usage;
    await eventually(async () => {
      const text = await scrape(gw.metricsUrl);
      expect(metricValue(text, 'tokenscaler_gateway_request_input_tokens_sum', { model: 'gpt-4o' })).toBe(
        usage.prompt_tokens,
      );
      expect(
        metricValue(text, 'tokenscaler_gateway_usage_source_total', { model: 'gpt-4o', source: 'upstream' }),
      ).toBe(1);
    });
  });
});

describe('streaming', () => {
  it('without include_usage: byte-exact stream, output counted by the gateway', async () => {
    const gw = await gateway();
    const body = chatBody('Stream me an answer.', { stream: true, max_tokens: 20 });
    const direct = await postJson(`${upstream.url}/v1/chat/completions`, body);
    const proxied = await postJson(`${gw.proxyUrl}/v1/chat/completions`, body);
    expect(proxied.headers['content-type']).toBe('text/event-stream');
    expect(proxied.body.equals(direct.body)).toBe(true);
    expect(proxied.body.toString()).not.toContain('"usage"');
    const seen = upstream.received.at(-1);
    await eventually(async () => {
      const text = await scrape(gw.metricsUrl);
      expect(metricValue(text, 'tokenscaler_gateway_request_output_tokens_sum', { model: 'gpt-4o' })).toBe(
        seen?.completionTokens,
      );
      expect(metricValue(text, 'tokenscaler_gateway_request_input_tokens_sum', { model: 'gpt-4o' })).toBe(
        seen?.promptTokens,
      );
      expect(
        metricValue(text, 'tokenscaler_gateway_time_to_first_token_seconds_count', { model: 'gpt-4o' }),
      ).toBe(1);
    });
  });

  it('with include_usage asked by the client: passes the usage chunk through and uses it', async () => {
    const gw = await gateway({ streamUsage: 'inject' });
    const body = chatBody('Stream with usage.', { stream: true, stream_options: { include_usage: true } });
    const direct = await postJson(`${upstream.url}/v1/chat/completions`, body);
    const proxied = await postJson(`${gw.proxyUrl}/v1/chat/completions`, body);
    expect(proxied.body.equals(direct.body)).toBe(true);
    expect(proxied.body.toString()).toContain('"choices":[],"usage":{');
    await eventually(async () => {
      const text = await scrape(gw.metricsUrl);
      expect(
        metricValue(text, 'tokenscaler_gateway_usage_source_total', { model: 'gpt-4o', source: 'upstream' }),
      ).toBe(1);
    });
  });

  it('inject mode: asks the upstream for usage and strips it so the client sees what it asked for', async () => {
    const gw = await gateway({ streamUsage: 'inject' });
    const body = chatBody('Stream, and let the gateway ask for usage.', { stream: true });
    const direct = await postJson(`${upstream.url}/v1/chat/completions`, body);
    const proxied = await postJson(`${gw.proxyUrl}/v1/chat/completions`, body);
    const sentUpstream = JSON.parse(upstream.received.at(-1)?.body ?? '{}');
    expect(sentUpstream.stream_options).toEqual({ include_usage: true });
    expect(proxied.body.toString()).toBe(direct.body.toString());
    const usage = {
      prompt: upstream.received.at(-1)?.promptTokens,
      completion: upstream.received.at(-1)?.completionTokens,
    };
    await eventually(async () => {
      const text = await scrape(gw.metricsUrl);
      expect(
        metricValue(text, 'tokenscaler_gateway_usage_source_total', { model: 'gpt-4o', source: 'upstream' }),
      ).toBe(1);
      expect(metricValue(text, 'tokenscaler_gateway_request_input_tokens_sum', { model: 'gpt-4o' })).toBe(
        usage.prompt,
      );
      expect(metricValue(text, 'tokenscaler_gateway_request_output_tokens_sum', { model: 'gpt-4o' })).toBe(
        usage.completion,
      );
      expect(
        metricValue(text, 'tokenscaler_gateway_policy_actions_total', {
          model: 'gpt-4o',
          policy: 'stream-usage-injected',
        }),
      ).toBe(1);
    });
  });

  it('delivers chunks as they are produced, and tracks waiting and in-flight tokens', async () => {
    const gw = await gateway();
    const body = chatBody('Slow first token please.', { stream: true, max_tokens: 30 });
    const firstChunkAt: number[] = [];
    const started = Date.now();
    let gaugesWhileWaiting: { waiting?: number; inflight?: number } = {};
    const done = new Promise<void>((resolve, reject) => {
      const req = http.request(
        `${gw.proxyUrl}/v1/chat/completions`,
        { method: 'POST', headers: { 'content-type': 'application/json', 'x-fake': 'first-delay-400' } },
        (res) => {
          res.on('data', () => firstChunkAt.push(Date.now() - started));
          res.on('end', () => resolve());
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
    await eventually(async () => {
      const text = await scrape(gw.metricsUrl);
      const waiting = metricValue(text, 'tokenscaler_gateway_waiting_tokens', { model: 'gpt-4o' });
      expect(waiting).toBeGreaterThan(0);
      gaugesWhileWaiting = {
        waiting,
        inflight: metricValue(text, 'tokenscaler_gateway_inflight_tokens', { model: 'gpt-4o' }),
      };
    });
    await done;
    const prompt = upstream.received.at(-1)?.promptTokens ?? Number.NaN;
    expect(gaugesWhileWaiting.waiting).toBe(prompt);
    expect(gaugesWhileWaiting.inflight).toBe(prompt + 30);
    // The role chunk arrived ~400 ms before the delayed content: the gateway did not buffer.
    expect((firstChunkAt.at(-1) ?? 0) - (firstChunkAt[0] ?? 0)).toBeGreaterThanOrEqual(300);
    await expectGaugesAtZero(gw.metricsUrl);
  });

  it('cancels the upstream request when the client disconnects', async () => {
    const gw = await gateway();
    const marker = `cancel-${Date.now()}`;
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        `${gw.proxyUrl}/v1/chat/completions`,
        { method: 'POST', headers: { 'content-type': 'application/json', 'x-fake': 'slow' } },
        (res) => {
          let chunks = 0;
          res.on('data', () => {
            chunks++;
            if (chunks === 3) {
              req.destroy();
              resolve();
            }
          });
        },
      );
      req.on('error', () => undefined);
      req.on('close', () => resolve());
      setTimeout(() => reject(new Error('no chunks')), 5000).unref();
      req.end(JSON.stringify(chatBody(marker, { stream: true })));
    });
    const cancelled = await upstream.waitForCancel((r) => r.body.includes(marker));
    expect(cancelled.cancelled).toBe(true);
    await expectGaugesAtZero(gw.metricsUrl);
    const text = await scrape(gw.metricsUrl);
    expect(metricValue(text, 'tokenscaler_gateway_client_cancellations_total', { model: 'gpt-4o' })).toBe(1);
  });
});

describe('upstream failures', () => {
  it('passes error statuses, headers and bodies through unchanged', async () => {
    const gw = await gateway();
    for (const status of [400, 429, 500, 503]) {
      const direct = await postJson(`${upstream.url}/v1/chat/completions`, chatBody('x'), {
        'x-fake': `status-${status}`,
      });
      const proxied = await postJson(`${gw.proxyUrl}/v1/chat/completions`, chatBody('x'), {
        'x-fake': `status-${status}`,
      });
      expect(proxied.status).toBe(status);
      expect(proxied.headers['retry-after']).toBe('7');
      expect(proxied.body.equals(direct.body)).toBe(true);
    }
    const text = await scrape(gw.metricsUrl);
    expect(metricValue(text, 'tokenscaler_gateway_requests_total', { model: 'gpt-4o', code: '429' })).toBe(1);
    // Failed requests do not count as token use.
    expect(
      metricValue(text, 'tokenscaler_gateway_request_input_tokens_count', { model: 'gpt-4o' }),
    ).toBeUndefined();
    await expectGaugesAtZero(gw.metricsUrl);
  });

  it('answers 502 with a JSON error when the upstream resets, and cuts a stream that breaks midway', async () => {
    const gw = await gateway();
    const reset = await postJson(`${gw.proxyUrl}/v1/chat/completions`, chatBody('x'), {
      'x-fake': 'reset-before',
    });
    expect(reset.status).toBe(502);
    expect(JSON.parse(reset.body.toString()).error.code).toBe('upstream_reset');
    const mid = postJson(`${gw.proxyUrl}/v1/chat/completions`, chatBody('x', { stream: true }), {
      'x-fake': 'reset-mid',
    });
    await expect(mid).rejects.toThrow();
    await expectGaugesAtZero(gw.metricsUrl);
    const text = await scrape(gw.metricsUrl);
    expect(
      metricValue(text, 'tokenscaler_gateway_upstream_errors_total', { model: 'gpt-4o', reason: 'reset' }),
    ).toBe(2);
  });

  it('answers 504 when the upstream does not respond in time, and 502 when it is unreachable', async () => {
    const gw = await gateway({ responseTimeoutSeconds: 0.3 });
    const slow = await postJson(`${gw.proxyUrl}/v1/chat/completions`, chatBody('x'), { 'x-fake': 'hang' });
    expect(slow.status).toBe(504);
    expect(JSON.parse(slow.body.toString()).error.message).toContain('--response-timeout-seconds');
    await gw.gateway.stop();
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    running = await startGateway(`http://127.0.0.1:${port}`, {}, tokenizers);
    const unreachable = await postJson(`${running.proxyUrl}/v1/chat/completions`, chatBody('x'));
    expect(unreachable.status).toBe(502);
    expect(JSON.parse(unreachable.body.toString()).error.code).toBe('upstream_connect');
    await expectGaugesAtZero(running.metricsUrl);
  });
});

describe('limits', () => {
  it('413 with a JSON error for a declared or streamed body over the limit', async () => {
    const gw = await gateway({ maxBodyBytes: 2048 });
    const big = chatBody('y'.repeat(5000));
    const declared = await postJson(`${gw.proxyUrl}/v1/chat/completions`, big);
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body.toString()).error.code).toBe('request_too_large');
    const chunked = await httpRequest(`${gw.proxyUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(big),
      chunked: true,
    });
    expect(chunked.status).toBe(413);
    expect(upstream.received.some((r) => r.body.includes('y'.repeat(5000)))).toBe(false);
    await expectGaugesAtZero(gw.metricsUrl);
  });

  it('431 with a JSON error for headers over the limit', async () => {
    const gw = await gateway({ maxHeaderBytes: 2048 });
    const res = await postJson(`${gw.proxyUrl}/v1/chat/completions`, chatBody('x'), {
      'x-big': 'z'.repeat(4096),
    });
    expect(res.status).toBe(431);
    expect(res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(res.body.toString()).error.code).toBe('headers_too_large');
  });
});

describe('policies (off by default)', () => {
  it('caps max_tokens and rejects prompts over the limit with 400', async () => {
    const gw = await gateway({ maxTokensCap: 8, maxPromptTokens: 60 });
    const ok = await postJson(`${gw.proxyUrl}/v1/chat/completions`, chatBody('short', { max_tokens: 500 }));
    expect(ok.status).toBe(200);
    expect(JSON.parse(upstream.received.at(-1)?.body ?? '{}').max_tokens).toBe(8);
    const before = upstream.received.length;
    const rejected = await postJson(`${gw.proxyUrl}/v1/chat/completions`, chatBody('long '.repeat(200)));
    expect(rejected.status).toBe(400);
    const error = JSON.parse(rejected.body.toString()).error;
    expect(error.code).toBe('prompt_too_long');
    expect(error.message).toMatch(/prompt is \d+ tokens .* limit of 60 tokens/);
    expect(upstream.received.length).toBe(before);
    const text = await scrape(gw.metricsUrl);
    // Both requests asked for more than 8 output tokens (500, then the default 12), so both were capped.
    expect(
      metricValue(text, 'tokenscaler_gateway_policy_actions_total', { policy: 'max-tokens-capped' }),
    ).toBe(2);
    expect(metricValue(text, 'tokenscaler_gateway_policy_actions_total', { policy: 'prompt-rejected' })).toBe(
      1,
    );
    await expectGaugesAtZero(gw.metricsUrl);
  });

  it('leaves request bytes alone by default', async () => {
    const gw = await gateway();
    const raw =
      '{ "model":"gpt-4o",  "messages":[{"role":"user","content":"spacing kept"}], "stream": true }';
    await httpRequest(`${gw.proxyUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: raw,
    });
    expect(upstream.received.at(-1)?.body).toBe(raw);
  });
});

describe('discipline and labels', () => {
  it('counts findings and bounds the model label', async () => {
    const gw = await gateway({ maxModelLabels: 2 });
    await postJson(`${gw.proxyUrl}/v1/chat/completions`, {
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'no limit' }],
    });
    await postJson(`${gw.proxyUrl}/v1/chat/completions`, chatBody('a'));
    await postJson(`${gw.proxyUrl}/v1/chat/completions`, { ...chatBody('b'), model: 'model-b' });
    await postJson(`${gw.proxyUrl}/v1/chat/completions`, { ...chatBody('c'), model: 'model-c' });
    await postJson(`${gw.proxyUrl}/v1/chat/completions`, { ...chatBody('d'), model: 'model-d' });
    await eventually(async () => {
      const text = await scrape(gw.metricsUrl);
      expect(
        metricValue(text, 'tokenscaler_gateway_discipline_findings_total', {
          model: 'gpt-4o',
          finding: 'no-output-limit',
        }),
      ).toBe(1);
      expect(metricValue(text, 'tokenscaler_gateway_requests_total', { model: 'other' })).toBe(2);
      expect(metricValue(text, 'tokenscaler_gateway_requests_total', { model: 'model-c' })).toBeUndefined();
    });
  });
});

describe('pass-through', () => {
  it('forwards other paths and methods unchanged, streaming bodies both ways', async () => {
    const gw = await gateway();
    const models = await httpRequest(`${gw.proxyUrl}/v1/models`);
    expect(JSON.parse(models.body.toString()).data[0].id).toBe('gpt-4o');
    const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    const echoed = await httpRequest(`${gw.proxyUrl}/echo`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: payload,
      chunked: true,
    });
    expect(echoed.body.equals(payload)).toBe(true);
    expect(upstream.received.at(-1)?.headers['host']).toBe(new URL(upstream.url).host);
  });

  it('forwards 10,000 mixed requests without losing or altering one', { timeout: 120_000 }, async () => {
    const gw = await gateway();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    const directAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    const total = 10_000;
    const mismatches: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        const kind = i % 4;
        const path = kind === 3 ? '/v1/completions' : '/v1/chat/completions';
        const body =
          kind === 3
            ? { model: 'gpt-4o', prompt: `prompt ${i}`, max_tokens: 1 + (i % 9), stream: i % 2 === 0 }
            : chatBody(`request ${i} ${'ü🚀'.repeat(i % 5)}`, {
                stream: kind !== 0,
                max_tokens: 1 + (i % 13),
              });
        const [viaGateway, direct] = await Promise.all([
          postJson(`${gw.proxyUrl}${path}`, body, {}, agent),
          postJson(`${upstream.url}${path}`, body, {}, directAgent),
        ]);
        if (viaGateway.status !== 200 || !viaGateway.body.equals(direct.body)) mismatches.push(`#${i}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    agent.destroy();
    directAgent.destroy();
    expect(mismatches).toEqual([]);
    const text = await scrape(gw.metricsUrl);
    expect(metricSum(text, 'tokenscaler_gateway_requests_total', { code: '200' })).toBe(total);
    await expectGaugesAtZero(gw.metricsUrl);
  });
});
