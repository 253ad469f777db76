import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { architectureFromHfConfig, type ModelArchitecture } from '../capacity/architecture.ts';
import type { CapacityInput } from '../capacity/kv-model.ts';
import {
  findModelPreset,
  type GpuPreset,
  requireGpuPreset,
  requireModelPreset,
} from '../capacity/presets.ts';
import { KV_CACHE_DTYPES, WEIGHT_DTYPES } from '../config/tokenscaler-spec.ts';
import { InvalidInputError } from '../errors.ts';
import { parseEnumFlag, parseNumberFlag } from './flags.ts';

/**
 * The replica flags `tokenscaler kv` and `tokenscaler simulate` share (model, GPU, parallelism,
 * dtypes, memory knobs), parsed one way so both commands read a fleet the same.
 */
export const CAPACITY_FLAG_OPTIONS = {
  model: { type: 'string' },
  gpu: { type: 'string' },
  'gpu-memory-gib': { type: 'string' },
  tp: { type: 'string' },
  pp: { type: 'string' },
  'kv-dtype': { type: 'string' },
  'weights-gib': { type: 'string' },
  'weight-dtype': { type: 'string' },
  'reserved-gib': { type: 'string' },
  'gpu-memory-utilization': { type: 'string' },
  'block-size': { type: 'string' },
} as const;

export type CapacityFlagValues = { [K in keyof typeof CAPACITY_FLAG_OPTIONS]?: string | undefined };

export interface CapacityFlagDefaults {
  model?: string;
  gpu?: string;
  tensorParallel: number;
  reservedGiB: number;
  gpuMemoryUtilization: number;
  blockSize: number;
}

export const CAPACITY_DEFAULTS: CapacityFlagDefaults = {
  tensorParallel: 1,
  reservedGiB: 2,
  gpuMemoryUtilization: 0.9,
  blockSize: 16,
};

/** A model preset id, or a path to a Hugging Face config.json (resolved against cwd). */
export async function loadModelFlag(value: string, cwd: string): Promise<ModelArchitecture> {
  const preset = findModelPreset(value);
  if (preset !== undefined) return preset;
  if (!value.endsWith('.json')) return requireModelPreset(value, '--model');
  const path = resolve(cwd, value);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InvalidInputError('--model', `cannot read config file ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError('--model', `${path} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidInputError('--model', `${path} must hold a JSON object (a Hugging Face config.json)`);
  }
  return architectureFromHfConfig(parsed as Record<string, unknown>, value);
}

/** The capacity input the flags describe, and the GPU preset when one was named. */
export async function capacityInputFromFlags(
  values: CapacityFlagValues,
  cwd: string,
  defaults: CapacityFlagDefaults = CAPACITY_DEFAULTS,
): Promise<{ input: CapacityInput; model: ModelArchitecture; gpu: GpuPreset | undefined }> {
  const modelFlag = values.model ?? defaults.model;
  if (modelFlag === undefined)
    throw new InvalidInputError('--model', 'is required: a model preset or a config.json path');
  const gpuId = values.gpu ?? (values['gpu-memory-gib'] === undefined ? defaults.gpu : undefined);
  const gpu = gpuId === undefined ? undefined : requireGpuPreset(gpuId, '--gpu');
  const gpuMemoryGiB =
    parseNumberFlag('gpu-memory-gib', values['gpu-memory-gib'], { min: 0, max: 4096, exclusiveMin: true }) ??
    gpu?.memoryGiB;
  if (gpuMemoryGiB === undefined)
    throw new InvalidInputError('--gpu', 'is required (a GPU preset), or give --gpu-memory-gib');
  const model = await loadModelFlag(modelFlag, cwd);
  const weightsGiB = parseNumberFlag('weights-gib', values['weights-gib'], {
    min: 0,
    max: 100_000,
    exclusiveMin: true,
  });
  const weightDtype = parseEnumFlag('weight-dtype', values['weight-dtype'], WEIGHT_DTYPES);
  const input: CapacityInput = {
    model,
    gpuMemoryGiB,
    tensorParallel:
      parseNumberFlag('tp', values.tp, { min: 1, max: 1024, integer: true }) ?? defaults.tensorParallel,
    pipelineParallel: parseNumberFlag('pp', values.pp, { min: 1, max: 1024, integer: true }) ?? 1,
    kvCacheDtype: parseEnumFlag('kv-dtype', values['kv-dtype'], KV_CACHE_DTYPES) ?? 'auto',
    ...(weightsGiB !== undefined ? { weightsGiB } : {}),
    ...(weightDtype !== undefined ? { weightDtype } : {}),
    reservedGiB:
      parseNumberFlag('reserved-gib', values['reserved-gib'], { min: 0, max: 4096 }) ?? defaults.reservedGiB,
    gpuMemoryUtilization:
      parseNumberFlag('gpu-memory-utilization', values['gpu-memory-utilization'], {
        min: 0,
        max: 1,
        exclusiveMin: true,
      }) ?? defaults.gpuMemoryUtilization,
    blockSize:
      parseNumberFlag('block-size', values['block-size'], { min: 1, max: 4096, integer: true }) ??
      defaults.blockSize,
  };
  return { input, model, gpu };
}
