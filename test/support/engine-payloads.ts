/**
 * Realistic `/metrics` payloads of inference engines, generated from a small traffic model so tests,
 * the integration suite and the parser benchmark can serve changing metrics whose true rates and
 * percentiles are known in advance.
 *
 * The traffic model is linear in time: at `tSeconds` every counter is `base + ratePerSecond x t`, and
 * request-length histograms grow by `requestsPerSecond x t` observations spread over the buckets by a
 * fixed cumulative distribution. So the exact answers are: prompt tokens/s = requestsPerSecond x
 * meanInputTokens, and the percentiles are those of the distribution, whatever window is used.
 *
 * Metric names, label sets and bucket layouts follow reference/engine-metrics.md (vLLM 0.11 §1.3,
 * SGLang §2, TGI §3, Triton TRT-LLM §4.1, trtllm-serve §4.2, the gateway in DESIGN.md).
 */

export interface TokenDistribution {
  /** Finite bucket upper bounds, ascending. */
  readonly bounds: readonly number[];
  /** Cumulative share of requests at or below each bound (same length as bounds), ending <= 1. */
  readonly cdf: readonly number[];
  readonly meanTokens: number;
}

export interface EngineState {
  readonly modelName: string;
  readonly runningRequests: number;
  readonly waitingRequests: number;
  /** 0..1 */
  readonly kvUsage: number;
  readonly numGpuBlocks: number;
  readonly blockSize: number;
  /** Finished requests per second. */
  readonly requestsPerSecond: number;
  readonly input: TokenDistribution;
  readonly output: TokenDistribution;
  readonly preemptionsPerSecond: number;
  /** Counters start here at t = 0 (large, so Prometheus' extrapolation never clamps at zero). */
  readonly baseRequests: number;
  /** Data-parallel engines in the pod (vLLM `engine` label); figures are split evenly. */
  readonly engines?: number;
}

/** vLLM 1-2-5 buckets up to max_model_len (engine-metrics.md §1.3). */
export function vllmTokenBounds(maxModelLen: number): number[] {
  const out: number[] = [];
  for (let scale = 1; ; scale *= 10) {
    for (const m of [1, 2, 5]) {
      const v = m * scale;
      if (v > maxModelLen) return out;
      out.push(v);
    }
  }
}

/** A distribution from sample token counts, bucketed on `bounds`. */
export function distributionOf(samples: readonly number[], bounds: readonly number[]): TokenDistribution {
  const n = samples.length;
  return {
    bounds,
    cdf: bounds.map((b) => samples.filter((s) => s <= b).length / n),
    meanTokens: samples.reduce((a, b) => a + b, 0) / n,
  };
}

export const DEFAULT_INPUT = distributionOf(
  [
    120, 340, 560, 800, 1100, 1500, 1900, 2600, 3400, 4800, 900, 700, 450, 300, 2200, 1300, 650, 980, 1750,
    6000,
  ],
  vllmTokenBounds(8192),
);
export const DEFAULT_OUTPUT = distributionOf(
  [40, 90, 150, 210, 260, 320, 400, 520, 640, 900, 120, 180, 75, 350, 450, 610, 230, 270, 820, 1500],
  vllmTokenBounds(8192),
);

export function engineState(overrides: Partial<EngineState> = {}): EngineState {
  return {
    modelName: 'meta-llama/Llama-3.1-8B-Instruct',
    runningRequests: 24,
    waitingRequests: 7,
    kvUsage: 0.8125,
    numGpuBlocks: 33676,
    blockSize: 16,
    requestsPerSecond: 4,
    input: DEFAULT_INPUT,
    output: DEFAULT_OUTPUT,
    preemptionsPerSecond: 0.05,
    baseRequests: 100_000,
    ...overrides,
  };
}

/** Exact fleet answers of the traffic model for a set of pods. */
export function expectedRates(states: readonly EngineState[]) {
  const sum = (f: (s: EngineState) => number) => states.reduce((a, s) => a + f(s), 0);
  return {
    promptTokensPerSecond: sum((s) => s.requestsPerSecond * s.input.meanTokens),
    generationTokensPerSecond: sum((s) => s.requestsPerSecond * s.output.meanTokens),
    preemptionsPerSecond: sum((s) => s.preemptionsPerSecond),
    requestsPerSecond: sum((s) => s.requestsPerSecond),
  };
}

const fmt = (v: number) => (Number.isInteger(v) ? `${v}.0` : String(v));

class Writer {
  lines: string[] = [];
  family(name: string, type: string, help: string): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    return this;
  }
  sample(name: string, labels: Record<string, string>, value: number): this {
    const keys = Object.keys(labels).sort();
    const set = keys.map((k) => `${k}="${labels[k]?.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',');
    this.lines.push(`${name}${set === '' ? '' : `{${set}}`} ${fmt(value)}`);
    return this;
  }
  histogram(
    name: string,
    labels: Record<string, string>,
    bounds: readonly number[],
    cumulative: readonly number[],
    count: number,
    sum: number,
  ): this {
    bounds.forEach((b, i) => {
      this.sample(`${name}_bucket`, { ...labels, le: fmt(b) }, cumulative[i] as number);
    });
    this.sample(`${name}_bucket`, { ...labels, le: '+Inf' }, count);
    this.sample(`${name}_count`, labels, count);
    this.sample(`${name}_sum`, labels, sum);
    return this;
  }
  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

/** Cumulative bucket counts and sum of a distribution after `count` requests. */
function observed(d: TokenDistribution, count: number) {
  return { cumulative: d.cdf.map((c) => c * count), sum: count * d.meanTokens };
}

function latencyBounds(): number[] {
  return [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
}

/**
 * vLLM 0.11 (V1 engine) as served on `/metrics`: sorted labels, `engine` label, `_created` gauges,
 * the token and latency histograms, cache_config_info, and the Python process metrics.
 * `legacy` switches to the pre-0.9.2 KV name (`vllm:gpu_cache_usage_perc`), as a fleet mid-upgrade has.
 */
export function vllmMetrics(
  state: EngineState,
  tSeconds: number,
  opts: { legacy?: boolean; full?: boolean; createdAt?: number } = {},
): string {
  const w = new Writer();
  const engines = state.engines ?? 1;
  const created = opts.createdAt ?? 1_753_795_326.9;
  const requests = state.baseRequests + state.requestsPerSecond * tSeconds;
  const perEngine = (v: number) => v / engines;
  const forEngines = (fn: (labels: Record<string, string>) => void) => {
    for (let e = 0; e < engines; e++) fn({ engine: String(e), model_name: state.modelName });
  };
  if (opts.full) {
    w.family('python_gc_objects_collected_total', 'counter', 'Objects collected during gc');
    for (const g of ['0', '1', '2'])
      w.sample('python_gc_objects_collected_total', { generation: g }, 12_345 + Number(g));
    w.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.');
    w.sample('process_resident_memory_bytes', {}, 8.123456e9);
    w.family('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.');
    w.sample('process_cpu_seconds_total', {}, 1234.56 + tSeconds);
  }
  w.family('vllm:num_requests_running', 'gauge', 'Number of requests in model execution batches.');
  forEngines((l) => w.sample('vllm:num_requests_running', l, perEngine(state.runningRequests)));
  w.family('vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.');
  forEngines((l) => w.sample('vllm:num_requests_waiting', l, perEngine(state.waitingRequests)));
  const kvName = opts.legacy ? 'vllm:gpu_cache_usage_perc' : 'vllm:kv_cache_usage_perc';
  w.family(kvName, 'gauge', 'KV-cache usage. 1 means 100 percent usage.');
  forEngines((l) => w.sample(kvName, l, state.kvUsage));
  const counter = (name: string, help: string, total: number) => {
    w.family(`${name}_total`, 'counter', help);
    forEngines((l) => w.sample(`${name}_total`, l, perEngine(total)));
    w.family(`${name}_created`, 'gauge', help);
    forEngines((l) => w.sample(`${name}_created`, l, created));
  };
  counter('vllm:prompt_tokens', 'Number of prefill tokens processed.', requests * state.input.meanTokens);
  counter(
    'vllm:generation_tokens',
    'Number of generation tokens processed.',
    requests * state.output.meanTokens,
  );
  counter(
    'vllm:num_preemptions',
    'Cumulative number of preemption from the engine.',
    1000 + state.preemptionsPerSecond * tSeconds,
  );
  w.family('vllm:request_success_total', 'counter', 'Count of successfully processed requests.');
  forEngines((l) => {
    w.sample('vllm:request_success_total', { ...l, finished_reason: 'stop' }, perEngine(requests * 0.85));
    w.sample('vllm:request_success_total', { ...l, finished_reason: 'length' }, perEngine(requests * 0.15));
  });
  const tokenHistogram = (name: string, help: string, d: TokenDistribution) => {
    w.family(name, 'histogram', help);
    const o = observed(d, requests);
    forEngines((l) =>
      w.histogram(name, l, d.bounds, o.cumulative.map(perEngine), perEngine(requests), perEngine(o.sum)),
    );
    w.family(`${name}_created`, 'gauge', help);
    forEngines((l) => w.sample(`${name}_created`, l, created));
  };
  tokenHistogram('vllm:request_prompt_tokens', 'Number of prefill tokens processed.', state.input);
  tokenHistogram('vllm:request_generation_tokens', 'Number of generation tokens processed.', state.output);
  if (opts.full) {
    tokenHistogram(
      'vllm:request_max_num_generation_tokens',
      'Histogram of maximum number of requested generation tokens.',
      state.output,
    );
    tokenHistogram(
      'vllm:request_params_max_tokens',
      'Histogram of the max_tokens request parameter.',
      state.output,
    );
    const latency = (name: string, help: string, bounds: number[], median: number) => {
      w.family(name, 'histogram', help);
      const cdf = bounds.map((b) => 1 - Math.exp((-b / median) * Math.LN2));
      forEngines((l) =>
        w.histogram(
          name,
          l,
          bounds,
          cdf.map((c) => perEngine(Math.round(c * requests))),
          perEngine(requests),
          perEngine(requests * median * 1.3),
        ),
      );
      w.family(`${name}_created`, 'gauge', help);
      forEngines((l) => w.sample(`${name}_created`, l, created));
    };
    const ttft = [
      0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160,
      640, 2560,
    ];
    const itl = [
      0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
    ];
    latency('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', ttft, 0.2);
    latency('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', itl, 0.03);
    latency(
      'vllm:request_time_per_output_token_seconds',
      'Histogram of time_per_output_token_seconds per request.',
      itl,
      0.03,
    );
    for (const phase of [
      'e2e_request_latency',
      'request_queue_time',
      'request_prefill_time',
      'request_decode_time',
      'request_inference_time',
    ]) {
      latency(`vllm:${phase}_seconds`, `Histogram of ${phase} in seconds.`, latencyBounds(), 4);
    }
    w.family('vllm:iteration_tokens_total', 'histogram', 'Histogram of number of tokens per engine_step.');
    const iter = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];
    forEngines((l) =>
      w.histogram(
        'vllm:iteration_tokens_total',
        l,
        iter,
        iter.map((_, i) => perEngine((requests * 10 * (i + 1)) / iter.length)),
        perEngine(requests * 10),
        perEngine(requests * 900),
      ),
    );
    counter(
      'vllm:prefix_cache_queries',
      'Prefix cache queries, in terms of number of queried tokens.',
      requests * 800,
    );
    counter(
      'vllm:prefix_cache_hits',
      'Prefix cache hits, in terms of number of cached tokens.',
      requests * 200,
    );
  }
  w.family('vllm:cache_config_info', 'gauge', 'Information of the LLMEngine CacheConfig');
  forEngines((l) =>
    w.sample(
      'vllm:cache_config_info',
      {
        block_size: String(state.blockSize),
        cache_dtype: 'auto',
        calculate_kv_scales: 'False',
        cpu_offload_gb: '0.0',
        enable_prefix_caching: 'True',
        engine: l.engine as string,
        gpu_memory_utilization: '0.9',
        is_attention_free: 'False',
        num_cpu_blocks: 'None',
        num_gpu_blocks: String(state.numGpuBlocks),
        num_gpu_blocks_override: 'None',
        prefix_caching_hash_algo: 'sha256',
        sliding_window: 'None',
        swap_space: '0.0',
      },
      1,
    ),
  );
  return w.text();
}

/** SGLang with `--enable-metrics --collect-tokens-histogram`, `tp` scheduler ranks all reporting. */
export function sglangMetrics(state: EngineState, tSeconds: number, opts: { tp?: number } = {}): string {
  const w = new Writer();
  const requests = state.baseRequests + state.requestsPerSecond * tSeconds;
  const capacity = state.numGpuBlocks * state.blockSize;
  const ranks = opts.tp ?? 1;
  const gauge = (name: string, help: string, value: number) => {
    w.family(name, 'gauge', help);
    for (let r = 0; r < ranks; r++) {
      w.sample(
        name,
        { engine_type: 'unified', model_name: state.modelName, pp_rank: '0', tp_rank: String(r) },
        value,
      );
    }
  };
  gauge('sglang:num_running_reqs', 'The number of running requests.', state.runningRequests);
  gauge('sglang:num_queue_reqs', 'The number of requests in the waiting queue.', state.waitingRequests);
  gauge('sglang:num_used_tokens', 'The number of used tokens.', Math.round(state.kvUsage * capacity));
  gauge('sglang:max_total_num_tokens', 'Maximum total number of tokens in the KV cache pool.', capacity);
  gauge('sglang:token_usage', 'The token usage.', state.kvUsage);
  const counter = (name: string, help: string, value: number) => {
    w.family(name, 'counter', help);
    w.sample(name, { model_name: state.modelName }, value);
  };
  counter(
    'sglang:prompt_tokens_total',
    'Number of prefill tokens processed.',
    requests * state.input.meanTokens,
  );
  counter(
    'sglang:generation_tokens_total',
    'Number of generation tokens processed.',
    requests * state.output.meanTokens,
  );
  counter('sglang:num_requests_total', 'Number of requests processed.', requests);
  counter(
    'sglang:num_retracted_requests_total',
    'Number of retracted requests.',
    1000 + state.preemptionsPerSecond * tSeconds,
  );
  for (const [name, d] of [
    ['sglang:prompt_tokens_histogram', state.input],
    ['sglang:generation_tokens_histogram', state.output],
  ] as const) {
    w.family(name, 'histogram', 'Histogram of token length.');
    const o = observed(d, requests);
    w.histogram(name, { model_name: state.modelName }, d.bounds, o.cumulative, requests, o.sum);
  }
  return w.text();
}

/** TGI: no `_total` suffixes, no labels on most metrics (engine-metrics.md §3). */
export function tgiMetrics(state: EngineState, tSeconds: number): string {
  const w = new Writer();
  const requests = state.baseRequests + state.requestsPerSecond * tSeconds;
  const capacity = state.numGpuBlocks * state.blockSize;
  w.family('tgi_queue_size', 'gauge', 'Current queue size');
  w.sample('tgi_queue_size', {}, state.waitingRequests);
  w.family('tgi_batch_current_size', 'gauge', 'Current batch size');
  w.sample('tgi_batch_current_size', {}, state.runningRequests);
  w.family('tgi_batch_current_max_tokens', 'gauge', 'Maximum tokens for the current batch');
  w.sample('tgi_batch_current_max_tokens', {}, Math.round(state.kvUsage * capacity));
  w.family('tgi_batch_max_total_tokens', 'gauge', 'Maximum amount of tokens in total.');
  w.sample('tgi_batch_max_total_tokens', {}, capacity);
  w.family('tgi_request_count', 'counter', 'Total number of requests');
  w.sample('tgi_request_count', {}, requests);
  for (const [name, d] of [
    ['tgi_request_input_length', state.input],
    ['tgi_request_generated_tokens', state.output],
  ] as const) {
    w.family(name, 'histogram', 'Token length');
    const o = observed(d, requests);
    w.histogram(name, {}, d.bounds, o.cumulative, requests, o.sum);
  }
  return w.text();
}

/** Triton TensorRT-LLM backend (nv_trt_llm_*), or trtllm-serve (trtllm_*) with `serve: true`. */
export function trtllmMetrics(state: EngineState, tSeconds: number, opts: { serve?: boolean } = {}): string {
  const w = new Writer();
  const requests = state.baseRequests + state.requestsPerSecond * tSeconds;
  const tokensPerBlock = 64;
  const maxBlocks = Math.round((state.numGpuBlocks * state.blockSize) / tokensPerBlock);
  const used = Math.round(state.kvUsage * maxBlocks);
  if (opts.serve) {
    const labels = { model_name: state.modelName, engine_type: 'trtllm' };
    const gauges: [string, number][] = [
      ['trtllm_num_requests_running', state.runningRequests],
      ['trtllm_num_requests_waiting', state.waitingRequests],
      ['trtllm_kv_cache_utilization', used / maxBlocks],
      ['trtllm_kv_cache_max_blocks', maxBlocks],
      ['trtllm_kv_cache_used_blocks', used],
      ['trtllm_kv_cache_free_blocks', maxBlocks - used],
      ['trtllm_kv_cache_tokens_per_block', tokensPerBlock],
    ];
    for (const [name, value] of gauges) w.family(name, 'gauge', name).sample(name, labels, value);
    const counters: [string, number][] = [
      ['trtllm_prompt_tokens_total', requests * state.input.meanTokens],
      ['trtllm_generation_tokens_total', requests * state.output.meanTokens],
      ['trtllm_request_success_total', requests],
    ];
    for (const [name, value] of counters) w.family(name, 'counter', name).sample(name, labels, value);
    return w.text();
  }
  const base = { model: 'tensorrt_llm', version: '1' };
  w.family('nv_trt_llm_request_metrics', 'gauge', 'TRT LLM request metrics');
  for (const [type, value] of [
    ['active', state.runningRequests],
    ['max', 256],
    ['scheduled', state.runningRequests],
    ['context', 2],
    ['waiting', state.waitingRequests],
  ] as const) {
    w.sample('nv_trt_llm_request_metrics', { ...base, request_type: type }, value);
  }
  w.family('nv_trt_llm_kv_cache_block_metrics', 'gauge', 'TRT LLM KV cache block metrics');
  for (const [type, value] of [
    ['max', maxBlocks],
    ['free', maxBlocks - used],
    ['used', used],
    ['tokens_per', tokensPerBlock],
    ['fraction', used / maxBlocks],
  ] as const) {
    w.sample('nv_trt_llm_kv_cache_block_metrics', { ...base, kv_cache_block_type: type }, value);
  }
  const bounds = [10, 50, 100, 500, 1000];
  for (const [name, d, type] of [
    ['nv_llm_input_token_len', state.input, 'total_input_tokens'],
    ['nv_llm_output_token_len', state.output, 'total_output_tokens'],
  ] as const) {
    w.family(name, 'histogram', 'Token length');
    const cdf = bounds.map((b) => {
      const i = d.bounds.findIndex((x) => x >= b);
      return i === -1 ? 1 : (d.cdf[i] as number);
    });
    w.histogram(
      name,
      { ...base, response_metric_type: type },
      bounds,
      cdf.map((c) => c * requests),
      requests,
      requests * d.meanTokens,
    );
  }
  return w.text();
}

/** The tokenscaler gateway's own metrics (DESIGN.md "Gateway metrics"), prom-client style. */
export function gatewayMetrics(
  state: EngineState,
  tSeconds: number,
  inflightTokens: number,
  waitingTokens: number,
): string {
  const w = new Writer();
  const requests = state.baseRequests + state.requestsPerSecond * tSeconds;
  const model = { model: state.modelName };
  w.family('tokenscaler_gateway_inflight_requests', 'gauge', 'Requests in flight.');
  w.sample('tokenscaler_gateway_inflight_requests', model, state.runningRequests + state.waitingRequests);
  w.family('tokenscaler_gateway_inflight_tokens', 'gauge', 'Prompt plus expected output tokens in flight.');
  w.sample('tokenscaler_gateway_inflight_tokens', model, inflightTokens);
  w.family('tokenscaler_gateway_waiting_tokens', 'gauge', 'Prompt tokens without a first token.');
  w.sample('tokenscaler_gateway_waiting_tokens', model, waitingTokens);
  w.family('tokenscaler_gateway_tokens_total', 'counter', 'Tokens through the gateway.');
  w.sample(
    'tokenscaler_gateway_tokens_total',
    { ...model, type: 'input', component: 'system' },
    requests * 100,
  );
  w.sample(
    'tokenscaler_gateway_tokens_total',
    { ...model, type: 'input', component: 'user' },
    requests * (state.input.meanTokens - 100),
  );
  w.sample(
    'tokenscaler_gateway_tokens_total',
    { ...model, type: 'output', component: 'completion' },
    requests * state.output.meanTokens,
  );
  for (const [name, d] of [
    ['tokenscaler_gateway_request_input_tokens', state.input],
    ['tokenscaler_gateway_request_output_tokens', state.output],
  ] as const) {
    w.family(name, 'histogram', 'Tokens per request.');
    const o = observed(d, requests);
    w.histogram(name, model, d.bounds, o.cumulative, requests, o.sum);
  }
  return w.text();
}
