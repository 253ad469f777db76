import type { ModelArchitecture } from '../capacity/architecture.ts';
import type { KvCapacity } from '../capacity/kv-model.ts';

/**
 * Step time of one engine iteration (one continuous-batching step) from a roofline: the step takes
 * the longer of its compute time and its memory time, plus a fixed overhead.
 *
 * - Compute: 2 FLOP per active parameter per token in the batch (prefill chunks and decode tokens
 *   alike), plus attention: for each (query token, cached token) pair, QK^T and AV cost
 *   2 x heads x (d_qk + d_v) FLOP per attention layer (GQA: d_qk = d_v = head_dim; MLA with absorbed
 *   weights: d_qk = kv_lora_rank + qk_rope_head_dim, d_v = kv_lora_rank). Divided over the replica's
 *   GPUs at `computeEfficiency` of the dense peak.
 * - Memory, per GPU: the GPU's share of the weights, read once per step, plus the KV cache the
 *   attention reads (every cached token of every sequence in the batch), at `memoryEfficiency` of the
 *   HBM bandwidth.
 *
 * Worked example, Llama-3.1-70B (70.55B parameters) on 4 x H100 (989 TFLOP/s, 3,350 GB/s) at
 * efficiencies 0.6 / 0.8 and 4 ms overhead:
 * - a decode step of 128 sequences at 2,000 cached tokens each: compute 2 x 70.55e9 x 128 / (4 x
 *   989e12 x 0.6) = 7.6 ms (attention adds 0.9 ms); memory (35.3 GB of weights + 256,000 tokens x 80 KiB)
 *   / (3,350e9 x 0.8) = 13.2 + 7.8 = 21.0 ms -> memory-bound, 25.0 ms with the overhead.
 * - a prefill chunk of 8,192 tokens: compute 2 x 70.55e9 x 8,192 / 2.37e15 = 487 ms (+ attention)
 *   -> about 16,000 prompt tokens/s per replica.
 *
 * Not modelled: tensor-parallel all-reduce time beyond the fixed overhead, pipeline-parallel latency
 * (PP is treated as throughput: the step time is the per-GPU share of the work), sliding-window
 * layers attending to fewer tokens, prefix caching, speculative decoding.
 */

export interface RooflineInput {
  model: ModelArchitecture;
  capacity: KvCapacity;
  /** Parameters one token passes through (active parameters for MoE). */
  activeParameters: number;
  peakTflopsPerGpu: number;
  hbmBandwidthGBpsPerGpu: number;
  /** Share of the dense peak a serving step sustains (0..1]. */
  computeEfficiency: number;
  /** Share of the HBM bandwidth a serving step sustains (0..1]. */
  memoryEfficiency: number;
  /** Fixed time per step: scheduling, sampling, kernel launches, TP all-reduce latency. */
  stepOverheadSeconds: number;
}

export class StepTimeModel {
  readonly flopsPerToken: number;
  readonly attentionFlopsPerPair: number;
  /** FLOP/s the replica sustains. */
  readonly computeRate: number;
  /** Bytes/s one GPU sustains. */
  readonly memoryRatePerGpu: number;
  readonly weightsBytesPerGpu: number;
  readonly kvBytesPerTokenPerGpu: number;
  readonly overheadSeconds: number;

  constructor(input: RooflineInput) {
    const { model, capacity } = input;
    this.flopsPerToken = 2 * input.activeParameters;
    const attentionLayers = model.layerKinds.filter((k) => k !== 'state').length;
    const [dQk, dV] =
      model.mla !== undefined
        ? [model.mla.kvLoraRank + model.mla.qkRopeHeadDim, model.mla.kvLoraRank]
        : [model.headDim, model.headDim];
    this.attentionFlopsPerPair = 2 * model.numAttentionHeads * (dQk + dV) * attentionLayers;
    this.computeRate = input.peakTflopsPerGpu * 1e12 * input.computeEfficiency * capacity.gpus;
    this.memoryRatePerGpu = input.hbmBandwidthGBpsPerGpu * 1e9 * input.memoryEfficiency;
    this.weightsBytesPerGpu = capacity.weightsBytesPerGpu;
    this.kvBytesPerTokenPerGpu = capacity.kvBytesPerTokenPerGpu;
    this.overheadSeconds = input.stepOverheadSeconds;
  }

  /**
   * @param batchTokens tokens computed this step (decode tokens + prefill chunk tokens)
   * @param attentionPairs (query, cached token) pairs the attention computes
   * @param kvReadTokens cached tokens the attention reads, summed over the batch
   */
  stepSeconds(batchTokens: number, attentionPairs: number, kvReadTokens: number): number {
    const compute =
      (this.flopsPerToken * batchTokens + this.attentionFlopsPerPair * attentionPairs) / this.computeRate;
    const memory =
      (this.weightsBytesPerGpu + this.kvBytesPerTokenPerGpu * kvReadTokens) / this.memoryRatePerGpu;
    return Math.max(compute, memory) + this.overheadSeconds;
  }

  /**
   * Prompt tokens per second one replica prefills when every step is a full chunk of fresh prompt
   * (no decode in the batch): the figure for the TokenScaler `target.prefillTokensPerSecondPerReplica`.
   * `promptTokens` sets the attention cost: a chunk of a prompt of that length, averaged over its chunks.
   */
  prefillTokensPerSecond(chunkTokens: number, promptTokens: number): number {
    const chunks = Math.max(1, Math.ceil(promptTokens / chunkTokens));
    let seconds = 0;
    let done = 0;
    for (let i = 0; i < chunks; i++) {
      const n = Math.min(chunkTokens, promptTokens - done);
      seconds += this.stepSeconds(n, n * done + (n * (n + 1)) / 2, done + n);
      done += n;
    }
    return promptTokens / seconds;
  }

  /**
   * Prompt tokens per second of a replica whose steps are full chunks packed with prompts of
   * `promptTokens` each (chunked prefill puts several short prompts in one step; a long prompt spans
   * several steps). This is the sustained prefill rate for a request mix with that mean prompt.
   */
  packedPrefillTokensPerSecond(chunkTokens: number, promptTokens: number): number {
    if (promptTokens >= chunkTokens) return this.prefillTokensPerSecond(chunkTokens, promptTokens);
    const pairs = (chunkTokens * (promptTokens + 1)) / 2;
    return chunkTokens / this.stepSeconds(chunkTokens, pairs, chunkTokens);
  }

  /** Seconds of one decode step for `sequences` sequences holding `contextTokens` each. */
  decodeStepSeconds(sequences: number, contextTokens: number): number {
    return this.stepSeconds(sequences, sequences * contextTokens, sequences * contextTokens);
  }
}
