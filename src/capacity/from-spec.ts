import type { TokenScalerSpec } from '../config/tokenscaler-spec.ts';
import { InvalidInputError } from '../errors.ts';
import { architectureFromHfConfig, type ModelArchitecture } from './architecture.ts';
import { type CapacityInput, computeCapacity, type KvCapacity } from './kv-model.ts';
import { requireGpuPreset, requireModelPreset } from './presets.ts';

/** The model a spec names: a preset id or an inline Hugging Face config. */
export function modelOfSpec(model: TokenScalerSpec['model']): ModelArchitecture {
  if (model.preset !== undefined) return requireModelPreset(model.preset, 'spec.model.preset');
  if (model.config !== undefined) return architectureFromHfConfig(model.config, 'spec.model.config');
  throw new InvalidInputError('spec.model', 'set exactly one of model.preset or model.config');
}

/** GPU memory a spec names: memoryGiB wins over the preset's figure. */
export function gpuMemoryGiBOfSpec(accelerator: TokenScalerSpec['accelerator']): number {
  if (accelerator.memoryGiB !== undefined) return accelerator.memoryGiB;
  if (accelerator.preset !== undefined)
    return requireGpuPreset(accelerator.preset, 'spec.accelerator.preset').memoryGiB;
  throw new InvalidInputError('spec.accelerator', 'set accelerator.preset or accelerator.memoryGiB');
}

export function capacityInputOfSpec(spec: TokenScalerSpec): CapacityInput {
  const model = modelOfSpec(spec.model);
  return {
    model,
    gpuMemoryGiB: gpuMemoryGiBOfSpec(spec.accelerator),
    tensorParallel: spec.accelerator.tensorParallel,
    pipelineParallel: spec.accelerator.pipelineParallel,
    kvCacheDtype: spec.engine.kvCacheDtype,
    ...(spec.model.weightsGiB !== undefined ? { weightsGiB: spec.model.weightsGiB } : {}),
    ...(spec.model.weightDtype !== undefined ? { weightDtype: spec.model.weightDtype } : {}),
    reservedGiB: spec.engine.reservedGiB,
    gpuMemoryUtilization: spec.engine.gpuMemoryUtilization,
    blockSize: spec.engine.blockSize,
    ...(spec.model.maxContextTokens !== undefined ? { contextTokens: spec.model.maxContextTokens } : {}),
  };
}

/** KV capacity of one replica as a TokenScaler spec describes it. */
export function capacityOfSpec(spec: TokenScalerSpec): KvCapacity {
  return computeCapacity(capacityInputOfSpec(spec));
}
