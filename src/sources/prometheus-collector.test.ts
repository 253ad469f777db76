import { describe, expect, it } from 'vitest';
import { vllmProfile } from './engines/vllm.ts';
import { createObservationSource } from './observation-source.ts';
import { PromQlBuilder } from './prometheus-collector.ts';

const builder = new PromQlBuilder({
  selector: '{namespace="inference", app="vllm",}',
  rateWindowSeconds: 120,
  staleAfterSeconds: 150,
  podLabel: 'instance',
});

describe('PromQlBuilder', () => {
  it('guards gauges against stale series and prefers renamed metrics per series', () => {
    expect(builder.gauge(vllmProfile.readings.kvUsage as never)).toBe(
      'avg by (instance) (' +
        '(vllm:kv_cache_usage_perc{namespace="inference", app="vllm"} and ((time() - timestamp(vllm:kv_cache_usage_perc{namespace="inference", app="vllm"})) < 150))' +
        ' or ' +
        '(vllm:gpu_cache_usage_perc{namespace="inference", app="vllm"} and ((time() - timestamp(vllm:gpu_cache_usage_perc{namespace="inference", app="vllm"})) < 150)))',
    );
  });

  it('collapses repeated ranks before summing', () => {
    const q = builder.gauge({
      kind: 'gauge',
      sources: [{ metric: 'sglang:num_used_tokens' }],
      perPod: 'sum',
      collapse: ['tp_rank', 'pp_rank'],
    });
    expect(q).toMatch(/^sum by \(instance\) \(max without \(tp_rank, pp_rank\) \(\(sglang:num_used_tokens\{/);
  });

  it('adds label matchers of the reading, escaped', () => {
    expect(builder.select({ metric: 'm', match: { kv_cache_block_type: 'used', q: 'a"b' } })).toBe(
      'm{namespace="inference", app="vllm",kv_cache_block_type="used",q="a\\"b"}',
    );
    expect(
      new PromQlBuilder({
        selector: '{}',
        rateWindowSeconds: 60,
        staleAfterSeconds: 90,
        podLabel: 'pod',
      }).select({ metric: 'm' }),
    ).toBe('m{}');
  });

  it('rates counters per pod and histograms by le over the window', () => {
    expect(builder.rate(vllmProfile.readings.promptTokens as never)).toBe(
      'sum by (instance) (rate(vllm:prompt_tokens_total{namespace="inference", app="vllm"}[120s]))',
    );
    expect(builder.histogram(vllmProfile.readings.input as never)).toEqual({
      buckets:
        'sum by (le) (rate(vllm:request_prompt_tokens_bucket{namespace="inference", app="vllm"}[120s]))',
      sum: 'sum(rate(vllm:request_prompt_tokens_sum{namespace="inference", app="vllm"}[120s]))',
      count: 'sum(rate(vllm:request_prompt_tokens_count{namespace="inference", app="vllm"}[120s]))',
    });
  });
});

/** A fake Prometheus answering each query from a table keyed by a substring of the query. */
function fakePrometheus(answers: [match: RegExp, result: unknown][]) {
  const asked: string[] = [];
  const fetch = async (_url: string, init: RequestInit) => {
    const query = new URLSearchParams(String(init.body)).get('query') ?? '';
    asked.push(query);
    const hit = answers.find(([re]) => re.test(query));
    const result = hit?.[1] ?? [];
    return new Response(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }));
  };
  return { fetch, asked };
}

const v = (labels: Record<string, string>, value: string) => ({ metric: labels, value: [1700000000, value] });

function prometheusSource(
  kind: 'vllm' | 'generic',
  fetch: ReturnType<typeof fakePrometheus>['fetch'],
  queries?: Record<string, string>,
) {
  return createObservationSource(
    {
      engine: { kind },
      metrics: {
        prometheus: {
          url: 'http://prometheus:9090',
          selector: '{app="vllm"}',
          rateWindowSeconds: 120,
          timeoutSeconds: 5,
          ...(queries === undefined ? {} : { queries }),
        },
      },
    },
    { fetch, clockMs: () => 0 },
  );
}

describe('PrometheusCollector through createObservationSource', () => {
  it('assembles a vLLM observation per pod: absent pods are absent, zeros are zeros', async () => {
    const { fetch } = fakePrometheus([
      [/^count by/, [v({ instance: 'a:8000' }, '2'), v({ instance: 'b:8000' }, '2')]],
      [/num_requests_running/, [v({ instance: 'a:8000' }, '10'), v({ instance: 'b:8000' }, '0')]],
      // waiting: only pod a reports it
      [/num_requests_waiting/, [v({ instance: 'a:8000' }, '3')]],
      [/kv_cache_usage_perc/, [v({ instance: 'a:8000' }, '0.5'), v({ instance: 'b:8000' }, '0.25')]],
      [
        /^\(vllm:cache_config_info/,
        [
          v(
            {
              __name__: 'vllm:cache_config_info',
              instance: 'a:8000',
              engine: '0',
              num_gpu_blocks: '1000',
              block_size: '16',
            },
            '1',
          ),
          v(
            {
              __name__: 'vllm:cache_config_info',
              instance: 'b:8000',
              engine: '0',
              num_gpu_blocks: '2000',
              block_size: '16',
            },
            '1',
          ),
        ],
      ],
      [/prompt_tokens_total/, [v({ instance: 'a:8000' }, '100'), v({ instance: 'b:8000' }, '50')]],
      [/generation_tokens_total/, [v({ instance: 'a:8000' }, 'NaN')]],
      [
        /^sum by \(le\) \(rate\(vllm:request_prompt_tokens_bucket/,
        [v({ le: '100' }, '1'), v({ le: '1000' }, '3'), v({ le: '+Inf' }, '4')],
      ],
      [/^sum\(rate\(vllm:request_prompt_tokens_sum/, [v({}, '1200')]],
      [/^sum\(rate\(vllm:request_prompt_tokens_count/, [v({}, '4')]],
    ]);
    const result = await prometheusSource('vllm', fetch).observe(1000, new AbortController().signal);
    if (!result.ok) throw result.error;
    const o = result.observation;
    expect(o.podsReporting).toBe(2);
    expect(o.runningRequests).toBe(10);
    expect(o.waitingRequests).toBe(3);
    expect(o.engineKvUsageRatio).toBeCloseTo(0.375, 12);
    expect(o.engineKvCapacityTokensPerReplica).toBe(16_000);
    expect(o.promptTokensPerSecond).toBe(150);
    expect(o.generationTokensPerSecond).toBeUndefined();
    // rank 0.5 x 4 = 2 in (100, 1000]: 100 + 900 x (2 - 1) / (3 - 1) = 550
    expect(o.requestInputTokens?.p50).toBe(550);
    // waiting 3 x mean prompt 1200 / 4 = 900
    expect(o.waitingTokens).toBe(900);
    // KV held: 0.5 x 16,000 + 0.25 x 32,000 = 16,000; running x tokens unknown (no output histogram)
    expect(o.inflightTokens).toBe(16_000);
    expect(result.pods.map((p) => p.pod)).toEqual(['a:8000', 'b:8000']);
  });

  it('fails with NO_PODS_REPORTING when the selector matches nothing', async () => {
    const { fetch } = fakePrometheus([]);
    const result = await prometheusSource('vllm', fetch).observe(0, new AbortController().signal);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('NO_PODS_REPORTING');
    expect(result.error.message).toMatch(/no series of vllm:num_requests_running, .* matched \{app="vllm"\}/);
  });

  it('runs generic user PromQL, one number per signal, measured', async () => {
    const { fetch, asked } = fakePrometheus([
      [/^count by \(instance\) \(up\{app="vllm"\} == 1\)$/, [v({ instance: 'x' }, '1')]],
      [/^my_inflight$/, [v({}, '5000')]],
      [/^my_p95$/, [v({}, '2048')]],
    ]);
    const result = await prometheusSource('generic', fetch, {
      inflightTokens: 'my_inflight',
      requestInputTokensP95: 'my_p95',
    }).observe(0, new AbortController().signal);
    if (!result.ok) throw result.error;
    expect(result.observation).toMatchObject({
      podsReporting: 1,
      inflightTokens: 5000,
      requestInputTokens: { p95: 2048 },
      provenance: { inflightTokens: 'measured', requestInputTokens: 'measured' },
    });
    expect(asked).toContain('my_inflight');
  });

  it('refuses a generic query that returns several series', async () => {
    const { fetch } = fakePrometheus([[/^my_inflight$/, [v({ pod: 'a' }, '1'), v({ pod: 'b' }, '2')]]]);
    const result = await prometheusSource('generic', fetch, { inflightTokens: 'my_inflight' }).observe(
      0,
      new AbortController().signal,
    );
    expect(result.ok || result.error.message).toBe(
      'the query for inflightTokens returned 2 series; it must return one number (wrap it in sum(...) or avg(...))',
    );
  });

  it('requires queries for generic', () => {
    expect(() => prometheusSource('generic', fakePrometheus([]).fetch)).toThrow(
      /metrics.prometheus.queries: engine kind "generic" needs/,
    );
  });

  it("fails the tick when any query fails, with Prometheus' reason", async () => {
    const fetch = async (_url: string, init: RequestInit) => {
      const query = new URLSearchParams(String(init.body)).get('query') ?? '';
      if (query.includes('num_preemptions')) {
        return new Response(
          JSON.stringify({
            status: 'error',
            errorType: 'execution',
            error: 'many-to-many matching not allowed',
          }),
          { status: 422 },
        );
      }
      return new Response(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }));
    };
    const result = await prometheusSource('vllm', fetch).observe(0, new AbortController().signal);
    expect(result.ok || result.error.code).toBe('PROMETHEUS_QUERY_FAILED');
    expect(result.ok || result.error.message).toMatch(/execution: many-to-many matching not allowed/);
  });
});
