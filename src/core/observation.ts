/**
 * One observation of token demand for one scaler, assembled by `sources/` from engine or gateway
 * metrics and consumed by `core/decide`. Every figure is optional: `undefined` means "not measured
 * this tick" and is never the same as zero. Figures are fleet totals (summed across pods) unless the
 * name says `perReplica`.
 */
export type SignalProvenance = 'measured' | 'estimated';

export interface TokenPercentiles {
  p50?: number;
  p95?: number;
  p99?: number;
}

export interface Observation {
  /** Unix time of the observation, seconds. */
  observedAtSeconds: number;
  /** Pods (engine endpoints) that contributed series to this observation. */
  podsReporting: number;
  /**
   * Tokens of every request in flight (running and still waiting for prefill), projected to
   * completion: prompt + expected output. This is the KV-cache demand the fleet must hold.
   */
  inflightTokens?: number;
  /** Prompt tokens of requests that wait for prefill (no first token yet). */
  waitingTokens?: number;
  runningRequests?: number;
  waitingRequests?: number;
  /** Per-request token percentiles over the rate window. */
  requestInputTokens?: TokenPercentiles;
  requestOutputTokens?: TokenPercentiles;
  /** Prompt (input) tokens per second entering the fleet. */
  promptTokensPerSecond?: number;
  /** Generated (output) tokens per second leaving the fleet. */
  generationTokensPerSecond?: number;
  /** Fleet-wide KV-cache usage as reported by the engines, 0..1 (mean over pods). */
  engineKvUsageRatio?: number;
  /** KV capacity one replica reports (vLLM num_gpu_blocks x block_size, SGLang max_total_num_tokens). */
  engineKvCapacityTokensPerReplica?: number;
  /** Preemptions (KV exhaustion evictions) per second across the fleet. */
  preemptionsPerSecond?: number;
  /** Which signals were measured directly and which were estimated from others, keyed by field name. */
  provenance: Partial<Record<ObservationSignal, SignalProvenance>>;
}

export type ObservationSignal = Exclude<
  keyof Observation,
  'observedAtSeconds' | 'podsReporting' | 'provenance'
>;
