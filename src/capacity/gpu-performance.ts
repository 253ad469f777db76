import type { ModelArchitecture } from './architecture.ts';
import referencePresets from './kv-presets.json' with { type: 'json' };
import { findGpuPreset } from './presets.ts';

/**
 * Roofline figures of the GPU presets, kept beside (not inside) kv-presets.json so that file stays an
 * unmodified copy of ../shared/reference/kv-presets.json. Memory bandwidth comes from that reference
 * (`hbm_bandwidth_GBps`); this module adds the peak dense BF16/FP16 tensor throughput, which the
 * reference does not carry, each figure with its source.
 *
 * "Dense" matters: NVIDIA datasheets print the tensor-core figure "with sparsity" (2:4 structured
 * sparsity, twice the dense rate), which LLM serving does not use. H100 SXM: 1,979 TFLOP/s with
 * sparsity -> 989 TFLOP/s dense. Every figure below is the dense one.
 *
 * Pure: no I/O.
 */

export interface GpuPerformance {
  /** Preset id, as in presets.ts. */
  id: string;
  /** Peak dense BF16 (= FP16) tensor-core throughput of one GPU, TFLOP/s (10^12 FLOP/s). */
  peakDenseBf16Tflops: number;
  /** HBM bandwidth of one GPU, GB/s (10^9 B/s), from the reference preset. */
  hbmBandwidthGBps: number;
  /** Where the TFLOP/s figure comes from. */
  sources: readonly string[];
  /** Set when the figure is an estimate rather than a published specification. */
  unconfirmed?: string;
}

interface TflopsEntry {
  peakDenseBf16Tflops: number;
  sources: readonly string[];
  unconfirmed?: string;
}

const NVIDIA_TENSOR_DATASHEET =
  'https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet';

/** Peak dense BF16 TFLOP/s by preset id. */
const TFLOPS: Readonly<Record<string, TflopsEntry>> = {
  a10g: {
    peakDenseBf16Tflops: 125,
    sources: [
      'NVIDIA A10 datasheet: BF16 tensor 125 TFLOP/s dense (250 with sparsity) https://www.nvidia.com/en-us/data-center/products/a10-gpu/',
    ],
    unconfirmed:
      'the A10 figure; the A10G (AWS) runs lower clocks and is assumed identical, as kv-presets.json assumes for its memory',
  },
  l4: {
    peakDenseBf16Tflops: 121,
    sources: [
      'NVIDIA L4 datasheet: BF16 tensor 242 TFLOP/s with sparsity -> 121 dense https://www.nvidia.com/en-us/data-center/l4/',
    ],
  },
  l40s: {
    peakDenseBf16Tflops: 362.05,
    sources: [
      'NVIDIA L40S datasheet: BF16 tensor 362.05 TFLOP/s dense (733 with sparsity) https://www.nvidia.com/en-us/data-center/l40s/',
      'ai-dynamo/aiconfigurator src/aiconfigurator/systems/l40s.yaml (float16_tc_flops 362.05 TFLOPS)',
    ],
  },
  'a100-40gb': {
    peakDenseBf16Tflops: 312,
    sources: [
      'NVIDIA A100 datasheet: BF16 tensor 312 TFLOP/s dense (624 with sparsity) https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf',
    ],
  },
  'a100-80gb': {
    peakDenseBf16Tflops: 312,
    sources: [
      'NVIDIA A100 datasheet: BF16 tensor 312 TFLOP/s dense (624 with sparsity) https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf',
    ],
  },
  'h100-80gb': {
    peakDenseBf16Tflops: 989,
    sources: [
      `NVIDIA H100 datasheet: H100 SXM BF16 tensor 1,979 TFLOP/s with sparsity -> 989 dense ${NVIDIA_TENSOR_DATASHEET}`,
      'ai-dynamo/aiconfigurator src/aiconfigurator/systems/h100_sxm.yaml (float16_tc_flops 989 TFLOPS)',
    ],
  },
  'h100-80gb-pcie': {
    peakDenseBf16Tflops: 756,
    sources: [
      `NVIDIA H100 datasheet: H100 PCIe BF16 tensor 1,513 TFLOP/s with sparsity -> 756 dense ${NVIDIA_TENSOR_DATASHEET}`,
    ],
  },
  'h200-141gb': {
    peakDenseBf16Tflops: 989,
    sources: [
      'NVIDIA H200 datasheet: H200 SXM BF16 tensor 1,979 TFLOP/s with sparsity -> 989 dense https://www.nvidia.com/en-us/data-center/h200/',
      'ai-dynamo/aiconfigurator h200_sxm.yaml (bfloat16_tc_flops 989 TFLOPS)',
    ],
  },
  b200: {
    peakDenseBf16Tflops: 2250,
    sources: [
      'NVIDIA HGX B200 specification: FP16/BF16 tensor 4.5 PFLOP/s per GPU with sparsity -> 2,250 TFLOP/s dense https://www.nvidia.com/en-us/data-center/hgx/',
    ],
  },
  gb200: {
    peakDenseBf16Tflops: 2500,
    sources: [
      'NVIDIA GB200 NVL72 specification: FP16/BF16 tensor 360 PFLOP/s for 72 GPUs with sparsity -> 5 per GPU -> 2,500 TFLOP/s dense https://www.nvidia.com/en-us/data-center/gb200-nvl72/',
    ],
  },
  mi300x: {
    peakDenseBf16Tflops: 1307.4,
    sources: [
      'AMD Instinct MI300X datasheet: peak BF16 1,307.4 TFLOP/s dense (2,614.9 with sparsity) https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html',
    ],
  },
  mi325x: {
    peakDenseBf16Tflops: 1307.4,
    sources: [
      'AMD Instinct MI325X datasheet: peak BF16 1,307.4 TFLOP/s dense (2,614.9 with sparsity) https://www.amd.com/en/products/accelerators/instinct/mi300/mi325x.html',
    ],
  },
  'tpu-v5e': {
    peakDenseBf16Tflops: 197,
    sources: [
      'https://cloud.google.com/tpu/docs/v5e (197 bf16 TFLOP/s per chip), as cited by kv-presets.json',
    ],
  },
};

/** Roofline figures of a GPU preset, or undefined when the preset is unknown or has no figures. */
export function findGpuPerformance(presetId: string): GpuPerformance | undefined {
  const gpu = findGpuPreset(presetId);
  if (gpu === undefined) return undefined;
  const entry = TFLOPS[gpu.id];
  if (entry === undefined || !Number.isFinite(gpu.hbmBandwidthGBps)) return undefined;
  return {
    id: gpu.id,
    peakDenseBf16Tflops: entry.peakDenseBf16Tflops,
    hbmBandwidthGBps: gpu.hbmBandwidthGBps,
    sources: entry.sources,
    ...(entry.unconfirmed !== undefined ? { unconfirmed: entry.unconfirmed } : {}),
  };
}

/** Preset ids that have roofline figures. */
export function gpuPerformanceIds(): string[] {
  return Object.keys(TFLOPS).sort();
}

interface ReferenceModelEntry {
  type: string;
  name: string;
  params_total_B_computed?: unknown;
  params_active_B_computed?: unknown;
}

const ACTIVE_PARAMETERS = new Map<string, number>();
/**
 * The reference leaves these two hybrids' parameters uncomputed ("n/c"); their active counts are the
 * published ones (Jamba v0.1: 52B total / 12B active; Qwen3-Next-80B-A3B: 3B active, in its name).
 */
const PUBLISHED_ACTIVE: Readonly<Record<string, number>> = {
  'jamba-v0.1': 12e9,
  'qwen3-next-80b-a3b': 3e9,
};
for (const entry of referencePresets as ReferenceModelEntry[]) {
  if (entry.type !== 'model' || typeof entry.params_active_B_computed !== 'number') continue;
  ACTIVE_PARAMETERS.set(entry.name, entry.params_active_B_computed * 1e9);
}

export interface ActiveParameters {
  /** Parameters one token passes through (all of them for a dense model, the routed experts' share for MoE). */
  count: number;
  /** Where the figure came from, for notes. */
  basis: 'reference-active' | 'total-parameters';
}

/**
 * Parameters touched per token, which sets the compute of a forward pass (2 FLOP per parameter per
 * token). For mixture-of-experts presets the reference's `params_active_B_computed` is used
 * (DeepSeek-V3: 37.6B of 671B); a model without it (a custom config.json) falls back to all its
 * parameters, which overstates an MoE model's compute; undefined when the count is unknown.
 */
export function activeParameters(model: ModelArchitecture): ActiveParameters | undefined {
  const active = ACTIVE_PARAMETERS.get(model.name) ?? PUBLISHED_ACTIVE[model.id];
  if (active !== undefined) return { count: active, basis: 'reference-active' };
  if (model.parameterCount !== undefined) return { count: model.parameterCount, basis: 'total-parameters' };
  return undefined;
}
