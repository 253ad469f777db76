import { z } from 'zod';

/**
 * The TokenScaler resource (group tokenscaler.dev, version v1alpha1): field names are fixed by
 * DESIGN.md. Every default lives here, so the CRD schema, the standalone YAML loader and the
 * controller agree. Objects are strict: a misspelt field is an error, not silently ignored.
 */

export const ENGINE_KINDS = ['vllm', 'sglang', 'tgi', 'trtllm', 'tokenscaler-gateway', 'generic'] as const;
export type EngineKind = (typeof ENGINE_KINDS)[number];

export const KV_CACHE_DTYPES = ['auto', 'bf16', 'fp16', 'fp8'] as const;
export type KvCacheDtype = (typeof KV_CACHE_DTYPES)[number];

export const WEIGHT_DTYPES = ['bf16', 'fp16', 'fp8', 'int8', 'int4'] as const;
export type WeightDtype = (typeof WEIGHT_DTYPES)[number];

export const BINDING_CONSTRAINTS = [
  'kv-memory',
  'prefill',
  'queue',
  'min',
  'max',
  'fallback',
  'hold',
] as const;
export type BindingConstraint = (typeof BINDING_CONSTRAINTS)[number];

const positiveInt = z.number().int().positive();
/** What the collectors can fetch: http or https with a host (`prometheus:9090` alone is not a URL here). */
const httpUrl = z.url({
  protocol: /^https?$/,
  error: 'expected an http(s) URL such as http://prometheus:9090',
});
const ratio = z.number().gt(0).lte(1);

export const scaleTargetRefSchema = z.strictObject({
  apiVersion: z.string().min(1).default('apps/v1'),
  kind: z.string().min(1).default('Deployment'),
  name: z.string().min(1),
});

/** A Hugging Face config.json: snake_case keys, passed through as given (capacity/ reads what it needs). */
export const hfConfigSchema = z.record(z.string(), z.unknown());

export const modelSpecSchema = z
  .strictObject({
    preset: z.string().min(1).optional(),
    config: hfConfigSchema.optional(),
    /** Whole-model weights in GiB; overrides parameters x weight dtype. */
    weightsGiB: z.number().positive().optional(),
    weightDtype: z.enum(WEIGHT_DTYPES).optional(),
    /** Longest request the engine admits (max_model_len); used for concurrency figures. */
    maxContextTokens: positiveInt.optional(),
  })
  .refine((m) => (m.preset === undefined) !== (m.config === undefined), {
    message: 'set exactly one of model.preset or model.config',
  });

export const acceleratorSpecSchema = z
  .strictObject({
    preset: z.string().min(1).optional(),
    /** Memory of one GPU in GiB. */
    memoryGiB: z.number().positive().optional(),
    tensorParallel: positiveInt.default(1),
    pipelineParallel: positiveInt.default(1),
  })
  .refine((a) => a.preset !== undefined || a.memoryGiB !== undefined, {
    message: 'set accelerator.preset or accelerator.memoryGiB',
  });

export const engineSpecSchema = z.strictObject({
  kind: z.enum(ENGINE_KINDS),
  /** Share of total GPU memory the engine may use (vLLM --gpu-memory-utilization). */
  gpuMemoryUtilization: ratio.default(0.9),
  blockSize: positiveInt.default(16),
  kvCacheDtype: z.enum(KV_CACHE_DTYPES).default('auto'),
  /** Per GPU: activations, non-torch memory (NCCL, CUDA context) and CUDA graphs. */
  reservedGiB: z.number().nonnegative().default(2),
});

const labelSelectorSchema = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
});

export const scrapeSpecSchema = z
  .strictObject({
    urls: z.array(httpUrl).min(1).optional(),
    podSelector: labelSelectorSchema.optional(),
    port: z.number().int().min(1).max(65535).optional(),
    path: z.string().startsWith('/').default('/metrics'),
    scheme: z.enum(['http', 'https']).default('http'),
    timeoutSeconds: z.number().positive().max(60).default(5),
  })
  .refine((s) => (s.urls === undefined) !== (s.podSelector === undefined), {
    message: 'set exactly one of scrape.urls or scrape.podSelector',
  })
  .refine((s) => s.podSelector === undefined || s.port !== undefined, {
    message: 'scrape.podSelector needs scrape.port',
  });

/** PromQL per signal, for engine kind `generic` (and to override a profile's queries). */
export const genericQueriesSchema = z.strictObject({
  inflightTokens: z.string().min(1).optional(),
  waitingTokens: z.string().min(1).optional(),
  runningRequests: z.string().min(1).optional(),
  waitingRequests: z.string().min(1).optional(),
  promptTokensPerSecond: z.string().min(1).optional(),
  generationTokensPerSecond: z.string().min(1).optional(),
  requestInputTokensP95: z.string().min(1).optional(),
  requestOutputTokensP95: z.string().min(1).optional(),
  engineKvUsageRatio: z.string().min(1).optional(),
});

export const prometheusSpecSchema = z.strictObject({
  url: httpUrl,
  /** Label matchers inside braces, e.g. {namespace="inference",app="vllm"}. */
  selector: z.string().regex(/^\{.*\}$/s, 'a PromQL label selector in braces, e.g. {app="vllm"}'),
  rateWindowSeconds: positiveInt.default(120),
  timeoutSeconds: z.number().positive().max(60).default(5),
  queries: genericQueriesSchema.optional(),
});

export const metricsSpecSchema = z
  .strictObject({
    scrape: scrapeSpecSchema.optional(),
    prometheus: prometheusSpecSchema.optional(),
  })
  .refine((m) => (m.scrape === undefined) !== (m.prometheus === undefined), {
    message: 'set exactly one of metrics.scrape or metrics.prometheus',
  });

export const targetSpecSchema = z.strictObject({
  /** Share of a replica's KV capacity the fleet should run at. */
  kvCacheUtilization: ratio.default(0.8),
  /** Prompt tokens per second one replica prefills at full load; enables the prefill term. */
  prefillTokensPerSecondPerReplica: z.number().positive().optional(),
  /**
   * Share of the prefill rate to plan for. Below 1 because decodes that share a step with a full
   * prefill chunk slow down: the trace simulation (bench/autoscaling.md) puts the TPOT-safe share
   * near 0.5-0.7 under vLLM's chunked prefill.
   */
  prefillUtilization: ratio.default(0.6),
  /** A backlog waiting for prefill should drain within this many seconds (prefill and queue terms). */
  queueDrainSeconds: z.number().positive().max(3600).default(10),
  /** Waiting tokens always tolerated, on top of what the fleet prefills in queueDrainSeconds. */
  queueToleranceTokens: z.number().nonnegative().default(0),
});

export const demandSpecSchema = z.strictObject({
  percentile: z.number().gt(0).lte(100).default(95),
  windowSeconds: positiveInt.default(300),
});

export const fallbackSpecSchema = z.strictObject({
  afterSeconds: positiveInt.default(120),
  /** Replicas to run while metrics are missing; default: keep the last decision (never scale down blind). */
  replicas: positiveInt.optional(),
});

export const behaviorSpecSchema = z.strictObject({
  /** A scale-down takes the highest recommendation of this many past seconds (as the HPA does). */
  scaleDownStabilizationSeconds: z.number().int().nonnegative().default(300),
});

export const hpaSpecSchema = z.strictObject({
  create: z.boolean().default(false),
});

export const tokenScalerSpecSchema = z
  .strictObject({
    scaleTargetRef: scaleTargetRefSchema,
    minReplicas: positiveInt.default(1),
    maxReplicas: positiveInt,
    model: modelSpecSchema,
    accelerator: acceleratorSpecSchema,
    engine: engineSpecSchema,
    metrics: metricsSpecSchema,
    target: targetSpecSchema.prefault({}),
    demand: demandSpecSchema.prefault({}),
    fallback: fallbackSpecSchema.prefault({}),
    behavior: behaviorSpecSchema.prefault({}),
    hpa: hpaSpecSchema.prefault({}),
  })
  .refine((s) => s.minReplicas <= s.maxReplicas, {
    message: 'minReplicas must not exceed maxReplicas',
    path: ['minReplicas'],
  });

export type TokenScalerSpec = z.infer<typeof tokenScalerSpecSchema>;
export type TokenScalerSpecInput = z.input<typeof tokenScalerSpecSchema>;

export const objectMetaSchema = z.object({
  name: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a DNS-1123 name')
    .max(253),
  namespace: z.string().min(1).default('default'),
  generation: z.number().int().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  creationTimestamp: z.string().optional(),
});

export const tokenScalerSchema = z.object({
  apiVersion: z.literal('tokenscaler.dev/v1alpha1'),
  kind: z.literal('TokenScaler'),
  metadata: objectMetaSchema,
  spec: tokenScalerSpecSchema,
  status: z.record(z.string(), z.unknown()).optional(),
});

export type TokenScaler = z.infer<typeof tokenScalerSchema>;

/** One TokenScaler as the reconcile loop sees it, from a YAML file (standalone) or the Kubernetes API. */
export interface ScalerDefinition {
  namespace: string;
  name: string;
  spec: TokenScalerSpec;
  /** metadata.generation (Kubernetes) or a content hash (files): a change means the spec changed. */
  generation: number | string;
  uid?: string;
}
