import { type CapacityInput, computeCapacity, GIB, type KvCapacity } from './kv-model.ts';

/**
 * When a replica cannot hold the model (or not one sequence of the asked context), say by how much it
 * misses and which single change would make it fit: more GPUs, fp8 KV, or a higher memory utilization.
 */
export interface FitAdvice {
  shortfallBytesPerGpu: number;
  message: string;
  suggestions: string[];
}

const MAX_TENSOR_PARALLEL = 64;
const MAX_UTILIZATION = 0.98;

export function adviseFit(input: CapacityInput, capacity: KvCapacity): FitAdvice | undefined {
  const holdsOneSequence =
    capacity.maxConcurrentSequences === undefined || capacity.maxConcurrentSequences >= 1;
  if (capacity.fits && holdsOneSequence) return undefined;

  const fitsWith = (changed: Partial<CapacityInput>): KvCapacity | undefined => {
    try {
      const c = computeCapacity({ ...input, ...changed });
      return c.fits && (c.maxConcurrentSequences === undefined || c.maxConcurrentSequences >= 1)
        ? c
        : undefined;
    } catch {
      return undefined;
    }
  };
  const suggestions: string[] = [];
  for (let tp = input.tensorParallel * 2; tp <= MAX_TENSOR_PARALLEL; tp *= 2) {
    const c = fitsWith({ tensorParallel: tp });
    if (c !== undefined) {
      suggestions.push(
        `--tp ${tp} (${tp * input.pipelineParallel} GPUs per replica): ${formatTokens(c.tokensPerReplica)} tokens per replica`,
      );
      break;
    }
  }
  if (input.kvCacheDtype !== 'fp8') {
    const c = fitsWith({ kvCacheDtype: 'fp8' });
    if (c !== undefined)
      suggestions.push(`--kv-dtype fp8: ${formatTokens(c.tokensPerReplica)} tokens per replica`);
  }
  for (const utilization of [0.92, 0.95, MAX_UTILIZATION]) {
    if (utilization <= input.gpuMemoryUtilization) continue;
    const c = fitsWith({ gpuMemoryUtilization: utilization });
    if (c !== undefined) {
      suggestions.push(
        `--gpu-memory-utilization ${utilization}: ${formatTokens(c.tokensPerReplica)} tokens per replica`,
      );
      break;
    }
  }

  let shortfallBytesPerGpu: number;
  let message: string;
  if (!capacity.fits) {
    shortfallBytesPerGpu = -capacity.kvBudgetBytesPerGpu;
    message = `the model does not fit: weights (${formatGiB(capacity.weightsBytesPerGpu)} per GPU) and reserve (${formatGiB(capacity.reservedBytesPerGpu)}) exceed the usable ${formatGiB(capacity.usableBytesPerGpu)} per GPU by ${formatGiB(shortfallBytesPerGpu)}`;
  } else {
    const stage = capacity.stages.reduce((a, b) =>
      b.kvBytesPerTokenPerGpu > a.kvBytesPerTokenPerGpu ? b : a,
    );
    const needed = Math.ceil((capacity.contextTokens ?? 0) * stage.kvBytesPerTokenPerGpu);
    shortfallBytesPerGpu = Math.max(0, needed - capacity.kvBudgetBytesPerGpu);
    message = `one sequence of ${capacity.contextTokens} tokens needs about ${formatGiB(needed)} of KV per GPU but the budget is ${formatGiB(capacity.kvBudgetBytesPerGpu)}: short by ${formatGiB(shortfallBytesPerGpu)}`;
  }
  if (suggestions.length === 0)
    suggestions.push(
      'a GPU with more memory, or fewer weights per GPU (quantized weights, pipeline parallel)',
    );
  return { shortfallBytesPerGpu, message, suggestions };
}

export function formatGiB(bytes: number): string {
  return `${(bytes / GIB).toFixed(2)} GiB`;
}

/** 464352 -> "464.4K", 1280000 -> "1.28M". */
export function formatTokens(tokens: number): string {
  if (tokens >= 1e6) return `${(tokens / 1e6).toFixed(2)}M`;
  if (tokens >= 1e3) return `${(tokens / 1e3).toFixed(1)}K`;
  return String(tokens);
}
