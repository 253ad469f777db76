import { InvalidInputError } from '../errors.ts';
import type { LayerKind, ModelArchitecture } from './architecture.ts';
import referencePresets from './kv-presets.json' with { type: 'json' };

/**
 * Model and GPU presets. The figures are those of ../shared/reference/kv-presets.json (copied beside
 * this file as kv-presets.json, each entry with its source); this module gives them lower-case ids
 * and turns them into the shapes the capacity model uses.
 */

export interface GpuPreset {
  id: string;
  name: string;
  /** Memory the engine sizes against, GiB: torch-visible where known, else nvidia-smi's, else the spec. */
  memoryGiB: number;
  memoryNote: string;
  hbmBandwidthGBps: number;
  sources: readonly string[];
}

interface ReferenceEntry {
  type: string;
  id?: string;
  name: string;
  [key: string]: unknown;
}

const entries = referencePresets as ReferenceEntry[];

/** Reference `id` (the Hugging Face repo) -> our preset id, plus what the reference row implies. */
const MODEL_IDS: Record<string, { id: string; aliases?: string[]; extra?: Partial<ModelArchitecture> }> = {
  'meta-llama/Llama-3.1-8B': { id: 'llama-3.1-8b' },
  'meta-llama/Llama-3.1-70B': { id: 'llama-3.1-70b' },
  'meta-llama/Llama-3.1-405B': { id: 'llama-3.1-405b' },
  'meta-llama/Llama-3.2-1B': { id: 'llama-3.2-1b' },
  'meta-llama/Llama-3.2-3B': { id: 'llama-3.2-3b' },
  'mistralai/Mixtral-8x7B-v0.1': { id: 'mixtral-8x7b' },
  'mistralai/Mixtral-8x22B-v0.1': { id: 'mixtral-8x22b' },
  'mistralai/Mistral-7B-v0.3': { id: 'mistral-7b-v0.3', aliases: ['mistral-7b'] },
  'Qwen/Qwen3-8B': { id: 'qwen3-8b' },
  'Qwen/Qwen3-32B': { id: 'qwen3-32b' },
  'Qwen/Qwen3-235B-A22B': { id: 'qwen3-235b-a22b' },
  'Qwen/Qwen2.5-7B-Instruct': { id: 'qwen2.5-7b' },
  'Qwen/Qwen2.5-72B-Instruct': { id: 'qwen2.5-72b' },
  // The DeepSeek-V3/R1 checkpoints ship FP8 weights (kv-cache-model.md 5.3).
  'deepseek-ai/DeepSeek-V3 (R1 identical arch)': {
    id: 'deepseek-v3',
    aliases: ['deepseek-r1'],
    extra: { defaultWeightDtype: 'fp8' },
  },
  // gpt-oss ships MXFP4 MoE weights; kv-cache-model.md 5.4 quotes ~65 GB for the 120b on one H100
  // (65e9 B = 60.5 GiB). The 20b is scaled by parameters from that figure (an estimate).
  'openai/gpt-oss-20b': { id: 'gpt-oss-20b', extra: { defaultWeightsGiB: 10.8 } },
  'openai/gpt-oss-120b': { id: 'gpt-oss-120b', extra: { defaultWeightsGiB: 60.5 } },
  'google/gemma-2-9b': { id: 'gemma-2-9b' },
  'google/gemma-2-27b': { id: 'gemma-2-27b' },
  'google/gemma-3-27b-it': { id: 'gemma-3-27b' },
  'microsoft/Phi-3-mini-4k-instruct': { id: 'phi-3-mini-4k' },
  // The reference does not compute these two hybrids' parameters ("n/c"); the totals below are the
  // published ones (Jamba: 52B total / 12B active; Qwen3-Next: 80B total / 3B active, in its name).
  'ai21labs/Jamba-v0.1': { id: 'jamba-v0.1', extra: { parameterCount: 52e9 } },
  'Qwen/Qwen3-Next-80B-A3B-Thinking': { id: 'qwen3-next-80b-a3b', extra: { parameterCount: 80e9 } },
};

/** Reference GPU `name` -> our id, and which memory figure applies (kv-cache-model.md section 4). */
const GPU_IDS: Record<string, { id: string; aliases?: string[]; specGiB?: number }> = {
  'NVIDIA A10G': { id: 'a10g' },
  'NVIDIA L4': { id: 'l4' },
  'NVIDIA L40S': { id: 'l40s' },
  'NVIDIA A100-SXM4-40GB': { id: 'a100-40gb' },
  'NVIDIA A100-80GB (SXM4 / PCIe)': { id: 'a100-80gb' },
  'NVIDIA H100-80GB SXM5 (HBM3)': { id: 'h100-80gb', aliases: ['h100'] },
  'NVIDIA H100-80GB PCIe': { id: 'h100-80gb-pcie' },
  'NVIDIA H200-141GB SXM': { id: 'h200-141gb', aliases: ['h200'] },
  'NVIDIA B200 (HGX)': { id: 'b200' },
  'NVIDIA GB200 (per Blackwell GPU)': { id: 'gb200' },
  // No reported figure in the reference: ROCm's GPU spec table lists VRAM in GiB (MI325X 256 GiB);
  // MI300X's 192 is taken the same way [unconfirmed]. TPU v5e: 16 GB HBM2 per chip.
  'AMD Instinct MI300X': { id: 'mi300x', specGiB: 192 },
  'AMD Instinct MI325X': { id: 'mi325x', specGiB: 256 },
  'Google TPU v5e (per chip)': { id: 'tpu-v5e', specGiB: 16e9 / 2 ** 30 },
};

function layerKindsOf(entry: ReferenceEntry, numLayers: number): LayerKind[] {
  const n = (key: string) => (typeof entry[key] === 'number' ? (entry[key] as number) : undefined);
  const all = (kind: LayerKind) => Array.from({ length: numLayers }, () => kind);
  switch (entry.id) {
    case 'ai21labs/Jamba-v0.1': // attn_layer_offset 4, attn_layer_period 8
      return Array.from({ length: numLayers }, (_, i) => (i % 8 === 4 ? 'full' : 'state'));
    case 'Qwen/Qwen3-Next-80B-A3B-Thinking': // full_attention_interval 4
      return Array.from({ length: numLayers }, (_, i) => ((i + 1) % 4 === 0 ? 'full' : 'state'));
    case 'google/gemma-3-27b-it': // 5 local : 1 global; 62 layers -> 52 local + 10 global
      return Array.from({ length: numLayers }, (_, i) => ((i + 1) % 6 === 0 ? 'full' : 'sliding'));
    case 'microsoft/Phi-3-mini-4k-instruct': // sliding_window 2047 on every layer
      return all('sliding');
  }
  const sliding = n('sliding_layers');
  if (sliding !== undefined && sliding > 0) {
    // gpt-oss and Gemma 2 alternate, starting with a sliding layer.
    return Array.from({ length: numLayers }, (_, i) => (i % 2 === 0 ? 'sliding' : 'full'));
  }
  return all('full');
}

function modelFromEntry(
  entry: ReferenceEntry,
  id: string,
  extra: Partial<ModelArchitecture>,
): ModelArchitecture {
  const num = (key: string): number => {
    const value = entry[key];
    if (typeof value !== 'number') throw new Error(`kv-presets.json ${entry.id}: ${key} is not a number`);
    return value;
  };
  const numLayers = num('num_hidden_layers');
  const isMla = entry['attention'] === 'MLA';
  const kvHeads = num('num_key_value_heads');
  const heads = num('num_attention_heads');
  const state =
    (entry['mamba_state_bytes_per_sequence_bf16_derived'] as number | undefined) ??
    (entry['linear_state_bytes_per_sequence_bf16_derived'] as number | undefined) ??
    0;
  const params = entry['params_total_B_computed'];
  const window = entry['sliding_window'];
  return {
    id,
    name: entry.name,
    source: String(entry['config_source'] ?? ''),
    attention: isMla ? 'mla' : kvHeads === 1 ? 'mqa' : kvHeads === heads ? 'mha' : 'gqa',
    layerKinds: layerKindsOf(entry, numLayers),
    numAttentionHeads: heads,
    numKvHeads: isMla ? 1 : kvHeads,
    headDim: isMla ? 0 : num('head_dim'),
    ...(isMla ? { mla: { kvLoraRank: num('kv_lora_rank'), qkRopeHeadDim: num('qk_rope_head_dim') } } : {}),
    ...(typeof window === 'number' ? { slidingWindowTokens: window } : {}),
    stateBytesPerSequence: state,
    ...(typeof params === 'number' ? { parameterCount: params * 1e9 } : {}),
    ...(typeof entry['max_position_embeddings'] === 'number'
      ? { maxPositionEmbeddings: entry['max_position_embeddings'] }
      : {}),
    ...extra,
  };
}

function buildModels(): Map<string, ModelArchitecture> {
  const models = new Map<string, ModelArchitecture>();
  for (const entry of entries) {
    if (entry.type !== 'model' || entry.id === undefined) continue;
    const mapping = MODEL_IDS[entry.id];
    if (mapping === undefined) throw new Error(`kv-presets.json model ${entry.id} has no preset id`);
    const model = modelFromEntry(entry, mapping.id, mapping.extra ?? {});
    models.set(mapping.id, model);
    for (const alias of mapping.aliases ?? []) models.set(alias, model);
  }
  return models;
}

function buildGpus(): Map<string, GpuPreset> {
  const gpus = new Map<string, GpuPreset>();
  for (const entry of entries) {
    if (entry.type !== 'gpu') continue;
    const mapping = GPU_IDS[entry.name];
    if (mapping === undefined) throw new Error(`kv-presets.json GPU ${entry.name} has no preset id`);
    const torch = entry['torch_reported_GiB_approx'];
    const reportedMiB = entry['reported_MiB'];
    const [memoryGiB, memoryNote] =
      typeof torch === 'number'
        ? [torch, 'torch-visible total (what vLLM multiplies by gpu_memory_utilization)']
        : typeof reportedMiB === 'number'
          ? [reportedMiB / 1024, 'nvidia-smi total']
          : [mapping.specGiB ?? Number.NaN, 'specification (no reported figure found)'];
    const gpu: GpuPreset = {
      id: mapping.id,
      name: entry.name,
      memoryGiB,
      memoryNote,
      hbmBandwidthGBps: entry['hbm_bandwidth_GBps'] as number,
      sources: (entry['sources'] as string[] | undefined) ?? [],
    };
    gpus.set(mapping.id, gpu);
    for (const alias of mapping.aliases ?? []) gpus.set(alias, gpu);
  }
  return gpus;
}

const MODELS = buildModels();
const GPUS = buildGpus();

export function modelPresetIds(): string[] {
  return [...new Set([...MODELS.values()].map((m) => m.id))];
}

export function gpuPresetIds(): string[] {
  return [...new Set([...GPUS.values()].map((g) => g.id))];
}

export function findModelPreset(id: string): ModelArchitecture | undefined {
  return MODELS.get(id.toLowerCase());
}

export function findGpuPreset(id: string): GpuPreset | undefined {
  return GPUS.get(id.toLowerCase());
}

export function requireModelPreset(id: string, field = 'model'): ModelArchitecture {
  const model = findModelPreset(id);
  if (model === undefined) throw unknownPreset(field, id, [...MODELS.keys()]);
  return model;
}

export function requireGpuPreset(id: string, field = 'gpu'): GpuPreset {
  const gpu = findGpuPreset(id);
  if (gpu === undefined) throw unknownPreset(field, id, [...GPUS.keys()]);
  return gpu;
}

function unknownPreset(field: string, id: string, known: string[]): InvalidInputError {
  const close = closeMatches(id.toLowerCase(), known);
  const hint = close.length > 0 ? `did you mean ${close.join(', ')}? ` : '';
  return new InvalidInputError(
    field,
    `unknown preset "${id}"; ${hint}known presets: ${[...new Set(known)].sort().join(', ')}`,
  );
}

/** Presets within a small edit distance, or sharing a prefix, best first. */
export function closeMatches(query: string, candidates: readonly string[], limit = 3): string[] {
  const scored = [...new Set(candidates)].map((candidate) => {
    const distance = editDistance(query, candidate);
    const related = candidate.includes(query) || query.includes(candidate);
    return { candidate, score: related ? Math.min(distance, 1) : distance };
  });
  const threshold = Math.max(2, Math.floor(query.length / 3));
  return scored
    .filter((s) => s.score <= threshold)
    .sort((a, b) => a.score - b.score || a.candidate.localeCompare(b.candidate))
    .slice(0, limit)
    .map((s) => s.candidate);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] as number;
}
