import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { InflightTally } from './inflight.ts';
import { GatewayMetrics } from './metrics.ts';

async function gauges(registry: Registry) {
  const read = async (name: string) => (await registry.getSingleMetric(name)?.get())?.values[0]?.value;
  return {
    requests: await read('tokenscaler_gateway_inflight_requests'),
    tokens: await read('tokenscaler_gateway_inflight_tokens'),
    waiting: await read('tokenscaler_gateway_waiting_tokens'),
  };
}

describe('InflightTally', () => {
  it('tracks prompt, expected and produced output, and returns to zero once', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(registry);
    const tally = new InflightTally(metrics, 'm');
    expect(await gauges(registry)).toEqual({ requests: 1, tokens: 0, waiting: 0 });
    tally.setPrompt(1000, 200);
    expect(await gauges(registry)).toEqual({ requests: 1, tokens: 1200, waiting: 1000 });
    tally.firstToken();
    tally.produced(150);
    expect(await gauges(registry)).toEqual({ requests: 1, tokens: 1200, waiting: 0 });
    tally.produced(260); // outgrew the expectation: counts what it holds
    expect(await gauges(registry)).toEqual({ requests: 1, tokens: 1260, waiting: 0 });
    tally.finish();
    tally.finish();
    tally.setPrompt(5, 5); // late count after the end changes nothing
    expect(await gauges(registry)).toEqual({ requests: 0, tokens: 0, waiting: 0 });
  });

  it('releases waiting tokens of a request that ends before its first token', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(registry);
    const a = new InflightTally(metrics, 'm');
    const b = new InflightTally(metrics, 'm');
    a.setPrompt(100, 10);
    b.setPrompt(50, 10);
    a.finish();
    expect(await gauges(registry)).toEqual({ requests: 1, tokens: 60, waiting: 50 });
    b.finish();
    expect(await gauges(registry)).toEqual({ requests: 0, tokens: 0, waiting: 0 });
  });
});
