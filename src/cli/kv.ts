import { adviseFit, formatGiB, formatTokens } from '../capacity/advice.ts';
import type { ModelArchitecture } from '../capacity/architecture.ts';
import { type CapacityInput, computeCapacity, type KvCapacity } from '../capacity/kv-model.ts';
import { InvalidInputError } from '../errors.ts';
import { CAPACITY_FLAG_OPTIONS, capacityInputFromFlags } from './capacity-flags.ts';
import { type CommandHandler, EXIT_FAILURE, EXIT_OK } from './command.ts';
import { parseFlags, parseNumberFlag } from './flags.ts';

const HELP = `usage: tokenscaler kv --model <preset|config.json> (--gpu <preset> | --gpu-memory-gib N) [flags]

KV-cache capacity of one replica (a TP x PP group of GPUs) for a model: bytes per token, weights,
KV budget per GPU, tokens per replica and concurrent sequences at a context length.

  --model ID|PATH               model preset (e.g. llama-3.1-70b) or a Hugging Face config.json
  --gpu ID                      GPU preset (e.g. h100-80gb)
  --gpu-memory-gib N            memory of one GPU in GiB (instead of --gpu, or to override it)
  --tp N                        tensor parallel size (default 1)
  --pp N                        pipeline parallel size (default 1)
  --kv-dtype auto|bf16|fp16|fp8 KV-cache dtype (default auto = model dtype)
  --weights-gib N               whole-model weights in GiB (default: parameters x weight dtype)
  --weight-dtype bf16|fp16|fp8|int8|int4
  --reserved-gib N              per GPU: activations, non-torch memory, CUDA graphs (default 2)
  --gpu-memory-utilization F    share of GPU memory the engine uses (default 0.9)
  --block-size N                KV block size in tokens (default 16)
  --context N                   sequence length for concurrency (and for sliding/hybrid models)
  --json                        machine-readable output
`;

export const runKv: CommandHandler = async (args, io) => {
  const { values } = parseFlags(args, {
    ...CAPACITY_FLAG_OPTIONS,
    context: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    io.stdout(HELP);
    return EXIT_OK;
  }
  const { input: fleet, model, gpu } = await capacityInputFromFlags(values, io.cwd);
  const contextTokens = parseNumberFlag('context', values.context, {
    min: 1,
    max: 100_000_000,
    integer: true,
  });
  const input: CapacityInput = { ...fleet, ...(contextTokens !== undefined ? { contextTokens } : {}) };
  const gpuMemoryGiB = input.gpuMemoryGiB;
  const capacity = withFlagNames(() => computeCapacity(input));
  const advice = adviseFit(input, capacity);

  if (values.json) {
    io.stdout(`${JSON.stringify(toJson(capacity, model, gpu?.id, gpuMemoryGiB, input, advice), null, 2)}\n`);
  } else {
    io.stdout(renderTable(capacity, model, gpu?.id, gpuMemoryGiB, input));
  }
  if (advice !== undefined) {
    io.stderr(`tokenscaler kv: ${advice.message}. What would fit: ${advice.suggestions.join('; ')}\n`);
    return EXIT_FAILURE;
  }
  return EXIT_OK;
};

/** Capacity errors name input fields (tensorParallel); on the command line the user typed flags. */
function withFlagNames<T>(run: () => T): T {
  const flags: Record<string, string> = {
    tensorParallel: '--tp',
    pipelineParallel: '--pp',
    weightsGiB: '--weights-gib',
    contextTokens: '--context',
  };
  try {
    return run();
  } catch (error) {
    if (error instanceof InvalidInputError && flags[error.field] !== undefined) {
      throw new InvalidInputError(flags[error.field] as string, error.message.slice(error.field.length + 2), {
        cause: error,
      });
    }
    throw error;
  }
}

function toJson(
  c: KvCapacity,
  model: ModelArchitecture,
  gpuId: string | undefined,
  gpuMemoryGiB: number,
  input: CapacityInput,
  advice: ReturnType<typeof adviseFit>,
) {
  return {
    model: model.id,
    modelSource: model.source,
    gpu: gpuId ?? null,
    gpuMemoryGiB,
    attention: c.attention,
    tensorParallel: c.tensorParallel,
    pipelineParallel: c.pipelineParallel,
    gpus: c.gpus,
    kvCacheDtype: c.kvCacheDtype,
    kvDtypeBytes: c.kvDtypeBytes,
    blockSize: c.blockSize,
    gpuMemoryUtilization: input.gpuMemoryUtilization,
    kvHeadsPerGpu: c.kvHeadsPerGpu,
    kvBytesPerToken: c.kvBytesPerToken,
    kvBytesPerTokenPerGpu: c.kvBytesPerTokenPerGpu,
    kvBytesPerTokenPerLayerPerGpu: c.kvBytesPerTokenPerLayerPerGpu,
    memoryBytesPerGpu: c.memoryBytesPerGpu,
    usableBytesPerGpu: c.usableBytesPerGpu,
    weightsBytes: c.weightsBytes,
    weightsBytesPerGpu: c.weightsBytesPerGpu,
    reservedBytesPerGpu: c.reservedBytesPerGpu,
    kvBudgetBytesPerGpu: c.kvBudgetBytesPerGpu,
    tokensPerReplica: c.tokensPerReplica,
    contextTokens: c.contextTokens ?? null,
    maxConcurrentSequences: c.maxConcurrentSequences ?? null,
    contextDependent: c.contextDependent,
    stateBytesPerSequencePerGpu: c.stateBytesPerSequencePerGpu,
    fits: advice === undefined,
    stages: c.stages,
    notes: c.notes,
    ...(advice !== undefined
      ? {
          shortfallBytesPerGpu: advice.shortfallBytesPerGpu,
          problem: advice.message,
          suggestions: advice.suggestions,
        }
      : {}),
  };
}

function renderTable(
  c: KvCapacity,
  model: ModelArchitecture,
  gpuId: string | undefined,
  gpuMemoryGiB: number,
  input: CapacityInput,
): string {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(bytes % 1024 === 0 ? 0 : 1)} KiB`;
  const rows: [string, string, string][] = [
    ['KV bytes per token', kib(c.kvBytesPerToken), kib(c.kvBytesPerTokenPerGpu)],
    ['memory', formatGiB(c.memoryBytesPerGpu * c.gpus), formatGiB(c.memoryBytesPerGpu)],
    [
      `usable at ${input.gpuMemoryUtilization}`,
      formatGiB(c.usableBytesPerGpu * c.gpus),
      formatGiB(c.usableBytesPerGpu),
    ],
    ['weights', formatGiB(c.weightsBytes), formatGiB(c.weightsBytesPerGpu)],
    [
      'reserved (activations, graphs)',
      formatGiB(c.reservedBytesPerGpu * c.gpus),
      formatGiB(c.reservedBytesPerGpu),
    ],
    ['KV budget', formatGiB(c.kvBudgetBytesPerGpu * c.gpus), formatGiB(c.kvBudgetBytesPerGpu)],
    [
      'tokens (KV capacity)',
      `${c.tokensPerReplica.toLocaleString('en-US')} (${formatTokens(c.tokensPerReplica)})`,
      'every TP rank holds the same tokens',
    ],
  ];
  if (c.maxConcurrentSequences !== undefined) {
    rows.push([
      `sequences of ${(c.contextTokens ?? 0).toLocaleString('en-US')} tokens`,
      String(c.maxConcurrentSequences),
      '',
    ]);
  }
  const width = Math.max(...rows.map((r) => r[0].length));
  const valueWidth = Math.max(...rows.map((r) => r[1].length), 'per replica'.length);
  const line = (a: string, b: string, d: string) =>
    `  ${a.padEnd(width)}  ${b.padStart(valueWidth)}  ${d}`.trimEnd();
  const gpuLabel = gpuId ?? `${gpuMemoryGiB} GiB GPU`;
  const header = `${model.name} (${c.attention.toUpperCase()}) on ${c.gpus} x ${gpuLabel} (TP ${c.tensorParallel}, PP ${c.pipelineParallel}), KV ${c.kvCacheDtype}, block ${c.blockSize}`;
  const body = [line('', 'per replica', 'per GPU'), ...rows.map((r) => line(...r))];
  const notes = c.notes.map((n) => `  note: ${n}`);
  return `${[header, ...body, ...notes].join('\n')}\n`;
}
