import { describe, expect, it } from 'vitest';
import { parseExposition } from '../sources/exposition-parser.ts';
import { DemoFleet, type FleetOptions } from './fleet.ts';

const options: FleetOptions = {
  kvCapacityTokens: 10_000,
  blockSize: 16,
  prefillTokensPerSecond: 10_000,
  baseTimePerOutputTokenSeconds: 0.05,
  timePerOutputTokenPerRunningSeconds: 0,
  coldStartSeconds: 30,
  modelName: 'demo',
};

describe('DemoFleet', () => {
  it('serves requests to completion and exposes vLLM metrics', async () => {
    const fleet = new DemoFleet(options, 1);
    fleet.submit({ id: 1, inputTokens: 1_000, outputTokens: 20 });
    // 0.1 s prefill, then 20 tokens x 0.05 s = 1 s of decode.
    for (let i = 0; i < 15; i++) fleet.advance(0.1);
    expect(fleet.completedRequests).toBe(1);
    const [endpoint] = fleet.endpoints();
    const text = (await endpoint?.registry.metrics()) ?? '';
    const families = parseExposition(text).families;
    const names = families.map((f) => f.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'vllm:num_requests_running',
        'vllm:kv_cache_usage_perc',
        'vllm:cache_config_info',
      ]),
    );
    expect(text).toMatch(/num_gpu_blocks="625"/);
    expect(text).toMatch(/vllm:prompt_tokens_total\{[^}]*\} 1000/);
  });

  it('queues what does not fit the KV cache and cold-starts new replicas', () => {
    const fleet = new DemoFleet(options, 1);
    for (let i = 0; i < 3; i++) fleet.submit({ id: i, inputTokens: 4_000, outputTokens: 500 });
    fleet.advance(0.1);
    const [replica] = fleet.snapshot();
    expect(replica?.running).toBe(2);
    expect(replica?.waiting).toBe(1);
    fleet.scaleTo(3);
    expect(fleet.currentReplicas).toBe(3);
    expect(fleet.readyReplicas).toBe(1);
    fleet.advance(30);
    expect(fleet.readyReplicas).toBe(3);
  });

  it('drains replicas on scale-down without dropping requests', () => {
    const fleet = new DemoFleet(options, 2);
    for (let i = 0; i < 4; i++) fleet.submit({ id: i, inputTokens: 500, outputTokens: 10 });
    fleet.scaleTo(1);
    expect(fleet.currentReplicas).toBe(1);
    for (let i = 0; i < 40; i++) fleet.advance(0.1);
    expect(fleet.completedRequests).toBe(4);
    expect(fleet.snapshot()).toHaveLength(1);
  });
});
