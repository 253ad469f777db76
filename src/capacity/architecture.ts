import { InvalidInputError } from '../errors.ts';

/**
 * What the KV-cache model needs to know about an LLM, whatever it came from (a preset or a Hugging
 * Face config.json). Formulas: ../shared/reference/kv-cache-model.md section 1.
 */
export type AttentionKind = 'mha' | 'gqa' | 'mqa' | 'mla';

/** Per layer, in order: full attention, sliding-window attention, or a recurrent layer with fixed state. */
export type LayerKind = 'full' | 'sliding' | 'state';

export interface ModelArchitecture {
  id: string;
  name: string;
  source: string;
  attention: AttentionKind;
  layerKinds: readonly LayerKind[];
  numAttentionHeads: number;
  numKvHeads: number;
  headDim: number;
  /** MLA (DeepSeek V2/V3): the cached latent per token per layer; no K/V factor 2, not split by TP. */
  mla?: { kvLoraRank: number; qkRopeHeadDim: number };
  slidingWindowTokens?: number;
  /** Recurrent (Mamba / linear-attention) state of one sequence across all state layers, bytes, unsharded. */
  stateBytesPerSequence: number;
  /** Total parameters; weights = parameters x weight dtype bytes unless weightsGiB is given. */
  parameterCount?: number;
  /** Whole-model weights when the checkpoint is quantized in a way the parameter count cannot express. */
  defaultWeightsGiB?: number;
  defaultWeightDtype?: 'bf16' | 'fp16' | 'fp8' | 'int8' | 'int4';
  maxPositionEmbeddings?: number;
}

type HfConfig = Record<string, unknown>;

/**
 * Reads a Hugging Face config.json (snake_case keys). A multimodal config keeps the language model
 * under `text_config`; its keys win. A missing `head_dim` is `hidden_size / num_attention_heads`.
 * Missing keys the formula needs are named in one error.
 */
export function architectureFromHfConfig(raw: HfConfig, source: string): ModelArchitecture {
  const config: HfConfig = isRecord(raw['text_config']) ? { ...raw, ...raw['text_config'] } : raw;
  const missing: string[] = [];
  const int = (key: string, required = true): number | undefined => {
    const value = config[key];
    if (value === undefined || value === null) {
      if (required) missing.push(key);
      return undefined;
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new InvalidInputError(`config.${key}`, `${JSON.stringify(value)} is not a positive integer`);
    }
    return value;
  };

  const numLayers = int('num_hidden_layers');
  const numHeads = int('num_attention_heads');
  const hidden = int('hidden_size', false);
  const kvLoraRank = int('kv_lora_rank', false);
  const qkRope = kvLoraRank === undefined ? undefined : int('qk_rope_head_dim');
  let headDim = int('head_dim', false);
  if (headDim === undefined && kvLoraRank === undefined) {
    if (hidden !== undefined && numHeads !== undefined) headDim = hidden / numHeads;
    else if (hidden === undefined) missing.push('head_dim or hidden_size');
  }
  const numKvHeads = int('num_key_value_heads', false) ?? numHeads;
  if (missing.length > 0) {
    throw new InvalidInputError(
      'config',
      `${source} lacks ${missing.join(', ')}, which the KV-cache formula needs (kv-cache-model.md section 1)`,
    );
  }
  // The checks above guarantee these are set; narrow for the compiler.
  const layers = numLayers as number;
  const heads = numHeads as number;
  const kvHeads = numKvHeads as number;
  if (headDim !== undefined && !Number.isInteger(headDim)) {
    throw new InvalidInputError(
      'config.head_dim',
      `hidden_size / num_attention_heads = ${headDim} is not whole`,
    );
  }

  const layerKinds = layerKindsFromConfig(config, layers);
  const slidingWindow = layerKinds.includes('sliding') ? int('sliding_window') : undefined;
  const attention: AttentionKind =
    kvLoraRank !== undefined ? 'mla' : kvHeads === 1 ? 'mqa' : kvHeads === heads ? 'mha' : 'gqa';
  return {
    id: typeof config['_name_or_path'] === 'string' ? config['_name_or_path'] : source,
    name: typeof config['_name_or_path'] === 'string' ? config['_name_or_path'] : source,
    source,
    attention,
    layerKinds,
    numAttentionHeads: heads,
    numKvHeads: attention === 'mla' ? 1 : kvHeads,
    headDim: headDim ?? 0,
    ...(kvLoraRank !== undefined && qkRope !== undefined
      ? { mla: { kvLoraRank, qkRopeHeadDim: qkRope } }
      : {}),
    ...(slidingWindow !== undefined ? { slidingWindowTokens: slidingWindow } : {}),
    stateBytesPerSequence: stateBytesFromConfig(config, layerKinds),
    ...(estimateParameters(config, layers, heads, kvHeads, headDim) ?? {}),
    ...(typeof config['max_position_embeddings'] === 'number'
      ? { maxPositionEmbeddings: config['max_position_embeddings'] }
      : {}),
  };
}

/**
 * Which layers are full attention, sliding window or recurrent, from the keys real configs use:
 * `layer_types` (gpt-oss, Gemma 3, Qwen3-Next style), Jamba's attn_layer_offset/period, Qwen3-Next's
 * full_attention_interval, Gemma 2's alternation, Gemma 3's sliding_window_pattern, and a plain
 * `sliding_window` (Mistral v0.1, Phi-3) that applies to every layer.
 */
function layerKindsFromConfig(config: HfConfig, numLayers: number): LayerKind[] {
  const layerTypes = config['layer_types'];
  if (Array.isArray(layerTypes)) {
    if (layerTypes.length !== numLayers) {
      throw new InvalidInputError(
        'config.layer_types',
        `has ${layerTypes.length} entries but num_hidden_layers is ${numLayers}`,
      );
    }
    return layerTypes.map((t, i) => {
      if (t === 'full_attention' || t === 'attention') return 'full';
      if (t === 'sliding_attention' || t === 'chunked_attention') return 'sliding';
      if (t === 'linear_attention' || t === 'mamba' || t === 'mamba2') return 'state';
      throw new InvalidInputError(
        `config.layer_types[${i}]`,
        `${JSON.stringify(t)} is not one of full_attention, sliding_attention, linear_attention, mamba`,
      );
    });
  }
  const offset = config['attn_layer_offset'];
  const period = config['attn_layer_period'];
  if (typeof offset === 'number' && typeof period === 'number') {
    return Array.from({ length: numLayers }, (_, i) => (i % period === offset ? 'full' : 'state'));
  }
  const interval = config['full_attention_interval'];
  if (typeof interval === 'number' && interval > 0) {
    return Array.from({ length: numLayers }, (_, i) => ((i + 1) % interval === 0 ? 'full' : 'state'));
  }
  const window = config['sliding_window'];
  const slidingEnabled = typeof window === 'number' && window > 0 && config['use_sliding_window'] !== false;
  if (!slidingEnabled) return Array.from({ length: numLayers }, () => 'full');
  const pattern = config['sliding_window_pattern'];
  if (typeof pattern === 'number' && pattern > 1) {
    // Gemma 3: every pattern-th layer is global, the others local.
    return Array.from({ length: numLayers }, (_, i) => ((i + 1) % pattern === 0 ? 'full' : 'sliding'));
  }
  if (config['model_type'] === 'gemma2') {
    // Gemma 2 alternates local (even) and global (odd) layers.
    return Array.from({ length: numLayers }, (_, i) => (i % 2 === 0 ? 'sliding' : 'full'));
  }
  return Array.from({ length: numLayers }, () => 'sliding');
}

/**
 * Fixed recurrent state per sequence, bf16, from the formulas in kv-cache-model.md 1.4:
 * Mamba: d_inner x d_state + d_inner x (d_conv - 1) per layer, d_inner = expand x hidden
 * (Jamba: 28 x (8192 x 16 + 8192 x 3) x 2 B = 8,716,288 B).
 * Gated DeltaNet: value_heads x key_dim x value_dim + conv_dim x (kernel - 1), conv_dim = 2 x key_heads x key_dim
 * + value_heads x value_dim (Qwen3-Next: 36 x (32x128x128 + 8192x3) x 2 B = 39,518,208 B).
 */
function stateBytesFromConfig(config: HfConfig, layerKinds: readonly LayerKind[]): number {
  const stateLayers = layerKinds.filter((k) => k === 'state').length;
  if (stateLayers === 0) return 0;
  const n = (key: string): number | undefined =>
    typeof config[key] === 'number' ? (config[key] as number) : undefined;
  const bytes = 2;
  const valueHeads = n('linear_num_value_heads');
  const keyHeads = n('linear_num_key_heads');
  const keyDim = n('linear_key_head_dim');
  const valueDim = n('linear_value_head_dim');
  const kernel = n('linear_conv_kernel_dim');
  if (valueHeads && keyHeads && keyDim && valueDim && kernel) {
    const convDim = 2 * keyHeads * keyDim + valueHeads * valueDim;
    return stateLayers * (valueHeads * keyDim * valueDim + convDim * (kernel - 1)) * bytes;
  }
  const hidden = n('hidden_size');
  const expand = n('mamba_expand') ?? 2;
  const dState = n('mamba_d_state') ?? n('state_size');
  const dConv = n('mamba_d_conv') ?? n('conv_kernel');
  if (hidden && dState && dConv) {
    const dInner = expand * hidden;
    return stateLayers * (dInner * dState + dInner * (dConv - 1)) * bytes;
  }
  throw new InvalidInputError(
    'config',
    'has recurrent layers but lacks their state sizes (mamba_d_state and mamba_d_conv, or linear_num_value_heads, linear_num_key_heads, linear_key_head_dim, linear_value_head_dim and linear_conv_kernel_dim)',
  );
}

/**
 * Parameter count of a decoder from its config, for weight memory when no weightsGiB is given:
 * embeddings (twice unless tied) + per layer attention projections + MLP (dense, or MoE experts with
 * shared experts). Llama-3.1-8B: 2 x 128256 x 4096 + 32 x (2 x 4096 x 4096 + 2 x 4096 x 1024
 * + 3 x 4096 x 14336) = 8.03e9. Returns undefined when the keys are not there (weightsGiB then needed).
 */
function estimateParameters(
  config: HfConfig,
  numLayers: number,
  numHeads: number,
  numKvHeads: number,
  headDim: number | undefined,
): { parameterCount: number } | undefined {
  const n = (key: string): number | undefined =>
    typeof config[key] === 'number' ? (config[key] as number) : undefined;
  const hidden = n('hidden_size');
  const vocab = n('vocab_size');
  const intermediate = n('intermediate_size');
  if (!hidden || !vocab || !intermediate || headDim === undefined || headDim === 0) return undefined;
  const embeddings = vocab * hidden * (config['tie_word_embeddings'] === true ? 1 : 2);
  const attention = hidden * numHeads * headDim * 2 + hidden * numKvHeads * headDim * 2;
  const experts = n('num_local_experts') ?? n('num_experts') ?? n('n_routed_experts');
  const expertIntermediate = n('moe_intermediate_size') ?? intermediate;
  const sharedExperts = n('n_shared_experts') ?? 0;
  const mlp =
    experts !== undefined
      ? 3 * hidden * expertIntermediate * (experts + sharedExperts) + hidden * experts
      : 3 * hidden * intermediate;
  return { parameterCount: embeddings + numLayers * (attention + mlp) };
}

function isRecord(value: unknown): value is HfConfig {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
