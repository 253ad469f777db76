import { InvalidInputError } from '../errors.ts';
import type { LayerKind, ModelArchitecture } from './architecture.ts';

/**
 * KV-cache capacity of one replica (a TP x PP group of GPUs serving one model copy).
 * Formulas and worked examples: ../shared/reference/kv-cache-model.md; definitions: DESIGN.md
 * "KV-cache capacity model". Pure: no I/O.
 */

export type KvDtype = 'auto' | 'bf16' | 'fp16' | 'fp8';
export type WeightDtype = 'bf16' | 'fp16' | 'fp8' | 'int8' | 'int4';

export const GIB = 2 ** 30;

/** Bytes per element. `auto` is the model dtype; engines run bf16/fp16 models (fp32 configs are cast down). */
const KV_DTYPE_BYTES: Record<KvDtype, number> = { auto: 2, bf16: 2, fp16: 2, fp8: 1 };
const WEIGHT_DTYPE_BYTES: Record<WeightDtype, number> = { bf16: 2, fp16: 2, fp8: 1, int8: 1, int4: 0.5 };

export interface CapacityInput {
  model: ModelArchitecture;
  /** Memory of one GPU, GiB. */
  gpuMemoryGiB: number;
  tensorParallel: number;
  pipelineParallel: number;
  kvCacheDtype: KvDtype;
  /** Whole-model weights in GiB; overrides parameters x weight dtype. */
  weightsGiB?: number;
  weightDtype?: WeightDtype;
  /** Per GPU: activations, non-torch memory, CUDA graphs. */
  reservedGiB: number;
  gpuMemoryUtilization: number;
  blockSize: number;
  /** Sequence length for concurrency, and for the per-token cost of sliding-window and recurrent layers. */
  contextTokens?: number;
  /** Layers per pipeline stage; default splits as vLLM's get_pp_indices does. */
  pipelineLayerSplit?: readonly number[];
}

export interface StageCapacity {
  stage: number;
  layers: number;
  fullLayers: number;
  slidingLayers: number;
  stateLayers: number;
  kvBytesPerTokenPerGpu: number;
  tokens: number;
}

export interface KvCapacity {
  modelId: string;
  attention: ModelArchitecture['attention'];
  tensorParallel: number;
  pipelineParallel: number;
  gpus: number;
  kvCacheDtype: KvDtype;
  kvDtypeBytes: number;
  blockSize: number;
  kvHeadsPerGpu: number;
  /** Bytes of KV one token adds per attention layer on one GPU. */
  kvBytesPerTokenPerLayerPerGpu: number;
  /** What one token occupies across the whole replica, replicated heads counted on every GPU. */
  kvBytesPerToken: number;
  /** What one token occupies on the most loaded GPU. */
  kvBytesPerTokenPerGpu: number;
  memoryBytesPerGpu: number;
  usableBytesPerGpu: number;
  weightsBytes: number;
  weightsBytesPerGpu: number;
  reservedBytesPerGpu: number;
  /** floor(memory x utilization) - weights per GPU - reserved per GPU; negative when the model does not fit. */
  kvBudgetBytesPerGpu: number;
  tokensPerReplica: number;
  /** Sequences of `contextTokens` one replica holds at once (worst case: each at full length). */
  maxConcurrentSequences?: number;
  contextTokens?: number;
  /** True when the per-token cost depends on the context length (sliding-window or recurrent layers). */
  contextDependent: boolean;
  stateBytesPerSequencePerGpu: number;
  fits: boolean;
  stages: StageCapacity[];
  notes: string[];
}

/**
 * A replica with the engine defaults of the TokenScaler spec (src/config/tokenscaler-spec.ts:
 * one GPU, KV in the model dtype, 2 GiB reserved, utilization 0.9, blocks of 16), overridable.
 */
export function replicaCapacityInput(
  model: ModelArchitecture,
  gpuMemoryGiB: number,
  overrides: Partial<CapacityInput> = {},
): CapacityInput {
  return {
    model,
    gpuMemoryGiB,
    tensorParallel: 1,
    pipelineParallel: 1,
    kvCacheDtype: 'auto',
    reservedGiB: 2,
    gpuMemoryUtilization: 0.9,
    blockSize: 16,
    ...overrides,
  };
}

/**
 * Layers per pipeline stage as vLLM splits them (get_pp_indices): floor(layers / pp) each, and the
 * remainder goes one each to the stages just before the last (the last also holds the LM head).
 * 61 layers on 4 stages: [15, 15, 16, 15].
 */
export function pipelineSplit(numLayers: number, pipelineParallel: number): number[] {
  const base = Math.floor(numLayers / pipelineParallel);
  const split = Array.from({ length: pipelineParallel }, () => base);
  const remainder = numLayers % pipelineParallel;
  for (let i = 2; i < remainder + 2; i++) {
    const index = pipelineParallel - i;
    split[index] = (split[index] as number) + 1;
  }
  return split;
}

export function kvHeadsPerGpu(model: ModelArchitecture, tensorParallel: number): number {
  // MLA keeps one latent that every TP rank stores in full (kv-cache-model.md 1.2, 1.6).
  if (model.attention === 'mla') return 1;
  // vLLM get_num_kv_heads: heads are divided by TP and replicated when TP exceeds them.
  return Math.max(1, Math.floor(model.numKvHeads / tensorParallel));
}

/**
 * KV bytes one token adds per attention layer on one GPU.
 * GQA: 2 (K and V) x heads per GPU x head_dim x bytes; Llama-3.1-70B at TP4: 2 x 2 x 128 x 2 = 1,024 B.
 * MLA: (kv_lora_rank + qk_rope_head_dim) x bytes, no factor 2; DeepSeek-V3: (512 + 64) x 2 = 1,152 B.
 */
export function kvBytesPerTokenPerLayerPerGpu(
  model: ModelArchitecture,
  tensorParallel: number,
  kvCacheDtype: KvDtype,
): number {
  const bytes = KV_DTYPE_BYTES[kvCacheDtype];
  if (model.mla !== undefined) return (model.mla.kvLoraRank + model.mla.qkRopeHeadDim) * bytes;
  return 2 * kvHeadsPerGpu(model, tensorParallel) * model.headDim * bytes;
}

/** KV bytes per token of the whole model at TP=1, counting sliding layers as full (the reference tables' figure). */
export function kvBytesPerTokenUnsharded(model: ModelArchitecture, kvCacheDtype: KvDtype): number {
  const attentionLayers = model.layerKinds.filter((k) => k !== 'state').length;
  return attentionLayers * kvBytesPerTokenPerLayerPerGpu(model, 1, kvCacheDtype);
}

export function weightsBytesOf(
  model: ModelArchitecture,
  weightsGiB: number | undefined,
  weightDtype: WeightDtype | undefined,
): number {
  if (weightsGiB !== undefined) return Math.round(weightsGiB * GIB);
  if (weightDtype === undefined && model.defaultWeightsGiB !== undefined) {
    return Math.round(model.defaultWeightsGiB * GIB);
  }
  if (model.parameterCount === undefined) {
    throw new InvalidInputError(
      'weightsGiB',
      `the parameter count of ${model.id} is unknown (its config lacks vocab_size, hidden_size or intermediate_size); give the whole-model weights with --weights-gib / model.weightsGiB`,
    );
  }
  return Math.round(
    model.parameterCount * WEIGHT_DTYPE_BYTES[weightDtype ?? model.defaultWeightDtype ?? 'bf16'],
  );
}

function validate(input: CapacityInput): void {
  const check = (field: string, value: number, ok: boolean, allowed: string) => {
    if (!Number.isFinite(value) || !ok) {
      throw new InvalidInputError(field, `${value} is not allowed; expected ${allowed}`);
    }
  };
  check('gpuMemoryGiB', input.gpuMemoryGiB, input.gpuMemoryGiB > 0, 'a number > 0');
  check(
    'tensorParallel',
    input.tensorParallel,
    Number.isInteger(input.tensorParallel) && input.tensorParallel >= 1,
    'an integer >= 1',
  );
  check(
    'pipelineParallel',
    input.pipelineParallel,
    Number.isInteger(input.pipelineParallel) && input.pipelineParallel >= 1,
    'an integer >= 1',
  );
  check(
    'gpuMemoryUtilization',
    input.gpuMemoryUtilization,
    input.gpuMemoryUtilization > 0 && input.gpuMemoryUtilization <= 1,
    'a number in (0, 1]',
  );
  check('reservedGiB', input.reservedGiB, input.reservedGiB >= 0, 'a number >= 0');
  check(
    'blockSize',
    input.blockSize,
    Number.isInteger(input.blockSize) && input.blockSize >= 1,
    'an integer >= 1',
  );
  if (input.weightsGiB !== undefined)
    check('weightsGiB', input.weightsGiB, input.weightsGiB > 0, 'a number > 0');
  if (input.contextTokens !== undefined) {
    check(
      'contextTokens',
      input.contextTokens,
      Number.isInteger(input.contextTokens) && input.contextTokens >= 1,
      'an integer >= 1',
    );
  }
  const layers = input.model.layerKinds.length;
  if (input.pipelineParallel > layers) {
    throw new InvalidInputError(
      'pipelineParallel',
      `${input.pipelineParallel} stages for ${layers} layers; at most ${layers}`,
    );
  }
  const split = input.pipelineLayerSplit;
  if (split !== undefined) {
    const sum = split.reduce((a, b) => a + b, 0);
    if (
      split.length !== input.pipelineParallel ||
      sum !== layers ||
      split.some((n) => !Number.isInteger(n) || n < 1)
    ) {
      throw new InvalidInputError(
        'pipelineLayerSplit',
        `[${split.join(', ')}] must list ${input.pipelineParallel} positive layer counts summing to ${layers}`,
      );
    }
  }
}

export function computeCapacity(input: CapacityInput): KvCapacity {
  validate(input);
  const { model, tensorParallel: tp, pipelineParallel: pp, blockSize } = input;
  const notes: string[] = [];
  const perLayer = kvBytesPerTokenPerLayerPerGpu(model, tp, input.kvCacheDtype);
  const headsPerGpu = kvHeadsPerGpu(model, tp);
  if (model.attention !== 'mla' && tp > model.numKvHeads) {
    notes.push(
      `tensor parallel ${tp} exceeds the ${model.numKvHeads} KV heads: each GPU holds 1 replicated head, so more GPUs add no KV capacity per token`,
    );
  }
  if (model.attention === 'mla' && tp > 1) {
    notes.push(
      `MLA latents are not split by tensor parallelism: each of the ${tp} GPUs stores the full latent cache`,
    );
  }

  const contextDependent = model.layerKinds.some((k) => k !== 'full');
  let context = input.contextTokens;
  if (context === undefined && contextDependent) {
    context = model.maxPositionEmbeddings ?? 8192;
    notes.push(
      `sliding-window or recurrent layers make capacity depend on sequence length: computed at context ${context} tokens (set --context)`,
    );
  }
  const window = model.slidingWindowTokens ?? Number.POSITIVE_INFINITY;
  // Recurrent state is split across TP ranks with the heads / inner dimension it belongs to.
  const statePerGpu = model.stateBytesPerSequence / tp;

  const memoryBytesPerGpu = Math.round(input.gpuMemoryGiB * GIB);
  const usableBytesPerGpu = Math.floor(memoryBytesPerGpu * input.gpuMemoryUtilization);
  const weightsBytes = weightsBytesOf(model, input.weightsGiB, input.weightDtype);
  const weightsBytesPerGpu = Math.ceil(weightsBytes / (tp * pp));
  const reservedBytesPerGpu = Math.round(input.reservedGiB * GIB);
  const kvBudgetBytesPerGpu = usableBytesPerGpu - weightsBytesPerGpu - reservedBytesPerGpu;

  const split = input.pipelineLayerSplit ?? pipelineSplit(model.layerKinds.length, pp);
  const stages: StageCapacity[] = [];
  const stageSequences: number[] = [];
  let firstLayer = 0;
  split.forEach((layers, stage) => {
    const kinds = model.layerKinds.slice(firstLayer, firstLayer + layers);
    firstLayer += layers;
    const count = (kind: LayerKind) => kinds.filter((k) => k === kind).length;
    const fullLayers = count('full');
    const slidingLayers = count('sliding');
    const stateLayers = count('state');
    const stateShare =
      model.stateBytesPerSequence === 0 ? 0 : statePerGpu * (stateLayers / countAll(model, 'state'));
    // Per-token cost at this context: sliding layers hold min(context, window) of each sequence's
    // tokens; recurrent state is a fixed amount per sequence, spread over its tokens.
    const effectiveContext = context ?? 1;
    const bytesPerToken =
      perLayer * fullLayers +
      perLayer *
        slidingLayers *
        (context === undefined ? 1 : Math.min(effectiveContext, window) / effectiveContext) +
      (context === undefined ? 0 : stateShare / effectiveContext);
    const tokens = tokensFromBudget(kvBudgetBytesPerGpu, bytesPerToken, blockSize);
    stages.push({
      stage,
      layers,
      fullLayers,
      slidingLayers,
      stateLayers,
      kvBytesPerTokenPerGpu: bytesPerToken,
      tokens,
    });
    if (context !== undefined) {
      const blocks = (n: number) => Math.ceil(n / blockSize) * blockSize;
      const perSequence =
        blocks(context) * perLayer * fullLayers +
        blocks(Math.min(context, window)) * perLayer * slidingLayers +
        stateShare;
      stageSequences.push(
        perSequence <= 0
          ? Number.POSITIVE_INFINITY
          : Math.max(0, Math.floor(kvBudgetBytesPerGpu / perSequence)),
      );
    }
  });

  const heaviest = stages.reduce((a, b) => (b.kvBytesPerTokenPerGpu > a.kvBytesPerTokenPerGpu ? b : a));
  const tokensPerReplica = Math.min(...stages.map((s) => s.tokens));
  const kvBytesPerToken = stages.reduce((sum, s) => sum + s.kvBytesPerTokenPerGpu, 0) * tp;
  if (pp > 1)
    notes.push(`pipeline stages hold [${split.join(', ')}] layers; capacity is the minimum over stages`);

  return {
    modelId: model.id,
    attention: model.attention,
    tensorParallel: tp,
    pipelineParallel: pp,
    gpus: tp * pp,
    kvCacheDtype: input.kvCacheDtype,
    kvDtypeBytes: KV_DTYPE_BYTES[input.kvCacheDtype],
    blockSize,
    kvHeadsPerGpu: headsPerGpu,
    kvBytesPerTokenPerLayerPerGpu: perLayer,
    kvBytesPerToken,
    kvBytesPerTokenPerGpu: heaviest.kvBytesPerTokenPerGpu,
    memoryBytesPerGpu,
    usableBytesPerGpu,
    weightsBytes,
    weightsBytesPerGpu,
    reservedBytesPerGpu,
    kvBudgetBytesPerGpu,
    tokensPerReplica,
    ...(context !== undefined
      ? { contextTokens: context, maxConcurrentSequences: Math.min(...stageSequences) }
      : {}),
    contextDependent,
    stateBytesPerSequencePerGpu: statePerGpu,
    fits: kvBudgetBytesPerGpu > 0 && tokensPerReplica > 0,
    stages,
    notes,
  };
}

/**
 * Whole blocks that fit the budget, in tokens: floor(budget / (bytes per token x block)) x block.
 * vLLM log cross-check (kv-cache-model.md 5.1): 19.28 GiB at 131,072 B/token and block 16 ->
 * floor(19.28 x 2^30 / 2,097,152) = 9,871 blocks = 157,936 tokens ("GPU KV cache size: 157,936 tokens").
 * Never negative: a budget at or below zero holds no tokens.
 */
export function tokensFromBudget(budgetBytes: number, bytesPerToken: number, blockSize: number): number {
  if (budgetBytes <= 0 || bytesPerToken <= 0) return 0;
  return Math.floor(budgetBytes / (bytesPerToken * blockSize)) * blockSize;
}

function countAll(model: ModelArchitecture, kind: LayerKind): number {
  return model.layerKinds.filter((k) => k === kind).length;
}
