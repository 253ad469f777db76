/**
 * The gateway's Prometheus metrics. The first six names, their types and labels are the contract
 * of DESIGN.md "Gateway metrics" (read by the `tokenscaler-gateway` engine profile in sources/):
 *
 *   tokenscaler_gateway_inflight_requests            gauge      {model}
 *   tokenscaler_gateway_inflight_tokens              gauge      {model}  prompt + expected output
 *   tokenscaler_gateway_waiting_tokens               gauge      {model}  prompt tokens before the first token
 *   tokenscaler_gateway_request_input_tokens         histogram  {model}
 *   tokenscaler_gateway_request_output_tokens        histogram  {model}
 *   tokenscaler_gateway_tokens_total                 counter    {model, type, component}
 *
 * The rest add what operators need to see token use (ratio, TTFT, discipline findings, policies,
 * cache). Every metric that describes requests carries `model`, whose values ModelLabeler bounds;
 * the other labels take values from fixed lists.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CountCache } from '../tokens/count-cache.ts';

export const TOKEN_TYPES = ['input', 'output'] as const;
/** `component` values: the prompt components for input; `completion` for output. */
export const OUTPUT_COMPONENT = 'completion';

/**
 * Powers of two from 8 to 2^20 tokens: 18 buckets, fine enough that histogram_quantile's P95 is
 * within a factor of 2 and high enough that 1M-token contexts do not saturate the top bucket
 * (reference/engine-metrics.md, "histogram_quantile saturates").
 */
export const TOKEN_BUCKETS = Array.from({ length: 18 }, (_, i) => 2 ** (i + 3));
/** Prompt tokens per output token: 0.5 (chatty output) to 10,000 (huge RAG prompt, one-word answer). */
export const RATIO_BUCKETS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000];
/** Seconds; the same upper range as vLLM's TTFT buckets (reference/engine-metrics.md §1.3). */
export const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 640];
export const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560];

export class GatewayMetrics {
  readonly inflightRequests: Gauge<'model'>;
  readonly inflightTokens: Gauge<'model'>;
  readonly waitingTokens: Gauge<'model'>;
  readonly requestInputTokens: Histogram<'model'>;
  readonly requestOutputTokens: Histogram<'model'>;
  readonly tokensTotal: Counter<'model' | 'type' | 'component'>;
  readonly inputOutputRatio: Histogram<'model'>;
  readonly timeToFirstToken: Histogram<'model'>;
  readonly requestDuration: Histogram<'model'>;
  readonly requestsTotal: Counter<'model' | 'endpoint' | 'code'>;
  readonly upstreamErrors: Counter<'model' | 'reason'>;
  readonly clientCancellations: Counter<'model'>;
  readonly usageSource: Counter<'model' | 'source'>;
  readonly findings: Counter<'model' | 'finding'>;
  readonly jsonMinifySavingTokens: Counter<'model'>;
  readonly policyActions: Counter<'model' | 'policy'>;

  constructor(registry: Registry, cache?: CountCache) {
    const registers = [registry];
    this.inflightRequests = new Gauge({
      name: 'tokenscaler_gateway_inflight_requests',
      help: 'Requests forwarded to the upstream and not yet finished.',
      labelNames: ['model'],
      registers,
    });
    this.inflightTokens = new Gauge({
      name: 'tokenscaler_gateway_inflight_tokens',
      help: 'Prompt plus expected output tokens of requests in flight (output: the request limit, else the P95 observed for the model, else a default; more once exceeded).',
      labelNames: ['model'],
      registers,
    });
    this.waitingTokens = new Gauge({
      name: 'tokenscaler_gateway_waiting_tokens',
      help: 'Prompt tokens of requests in flight that have not produced a first token (non-streaming: until the response starts).',
      labelNames: ['model'],
      registers,
    });
    this.requestInputTokens = new Histogram({
      name: 'tokenscaler_gateway_request_input_tokens',
      help: 'Prompt tokens per successful request (the upstream usage when reported, else the gateway count).',
      labelNames: ['model'],
      buckets: TOKEN_BUCKETS,
      registers,
    });
    this.requestOutputTokens = new Histogram({
      name: 'tokenscaler_gateway_request_output_tokens',
      help: 'Output tokens per successful request (the upstream usage when reported, else the gateway count).',
      labelNames: ['model'],
      buckets: TOKEN_BUCKETS,
      registers,
    });
    this.tokensTotal = new Counter({
      name: 'tokenscaler_gateway_tokens_total',
      help: 'Tokens of successful requests by type (input, output) and component (system, history, user, tool, image, template; completion for output).',
      labelNames: ['model', 'type', 'component'],
      registers,
    });
    this.inputOutputRatio = new Histogram({
      name: 'tokenscaler_gateway_request_input_output_ratio',
      help: 'Prompt tokens per output token of successful generating requests.',
      labelNames: ['model'],
      buckets: RATIO_BUCKETS,
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'tokenscaler_gateway_time_to_first_token_seconds',
      help: 'Time from the request reaching the gateway to the first output token of a streaming response.',
      labelNames: ['model'],
      buckets: TTFT_BUCKETS,
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'tokenscaler_gateway_request_duration_seconds',
      help: 'Time from the request reaching the gateway to the end of its response.',
      labelNames: ['model'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.requestsTotal = new Counter({
      name: 'tokenscaler_gateway_requests_total',
      help: 'Requests by endpoint (chat, completions, responses, embeddings, other) and HTTP status (0: no response was sent).',
      labelNames: ['model', 'endpoint', 'code'],
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'tokenscaler_gateway_upstream_errors_total',
      help: 'Upstream failures by reason (connect, timeout, reset).',
      labelNames: ['model', 'reason'],
      registers,
    });
    this.clientCancellations = new Counter({
      name: 'tokenscaler_gateway_client_cancellations_total',
      help: 'Requests whose client went away before the response ended; the upstream request was cancelled.',
      labelNames: ['model'],
      registers,
    });
    this.usageSource = new Counter({
      name: 'tokenscaler_gateway_usage_source_total',
      help: 'Successful requests by where their final token counts came from: upstream (its usage) or gateway (tokenizer estimate).',
      labelNames: ['model', 'source'],
      registers,
    });
    this.findings = new Counter({
      name: 'tokenscaler_gateway_discipline_findings_total',
      help: 'Requests with a token-discipline finding: no-output-limit, large-system-prompt, json-heavy-prompt, conversation-replay.',
      labelNames: ['model', 'finding'],
      registers,
    });
    this.jsonMinifySavingTokens = new Counter({
      name: 'tokenscaler_gateway_json_minify_saving_tokens_total',
      help: 'Prompt tokens that minifying the JSON of json-heavy-prompt requests would have saved.',
      labelNames: ['model'],
      registers,
    });
    this.policyActions = new Counter({
      name: 'tokenscaler_gateway_policy_actions_total',
      help: 'Requests changed or refused by a policy: max-tokens-capped, prompt-rejected, stream-usage-injected.',
      labelNames: ['model', 'policy'],
      registers,
    });
    if (cache !== undefined) registerCacheMetrics(registry, cache);
  }

  /** Creates the per-model gauge series at zero, so a model's series exist before its first request ends. */
  touch(model: string): void {
    this.inflightRequests.inc({ model }, 0);
    this.inflightTokens.inc({ model }, 0);
    this.waitingTokens.inc({ model }, 0);
  }
}

function registerCacheMetrics(registry: Registry, cache: CountCache): void {
  let reportedHits = 0;
  let reportedMisses = 0;
  new Counter({
    name: 'tokenscaler_gateway_count_cache_hits_total',
    help: 'Text segments whose token count came from the count cache.',
    registers: [registry],
    collect() {
      this.inc(cache.hits - reportedHits);
      reportedHits = cache.hits;
    },
  });
  new Counter({
    name: 'tokenscaler_gateway_count_cache_misses_total',
    help: 'Text segments that had to be tokenized.',
    registers: [registry],
    collect() {
      this.inc(cache.misses - reportedMisses);
      reportedMisses = cache.misses;
    },
  });
  new Gauge({
    name: 'tokenscaler_gateway_count_cache_entries',
    help: 'Entries held by the count cache.',
    registers: [registry],
    collect() {
      this.set(cache.size);
    },
  });
}
