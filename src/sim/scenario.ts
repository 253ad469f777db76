import type { ModelArchitecture } from '../capacity/architecture.ts';
import { activeParameters } from '../capacity/gpu-performance.ts';
import { type CapacityInput, computeCapacity, type KvCapacity } from '../capacity/kv-model.ts';
import { InvalidInputError } from '../errors.ts';
import {
  type EngineSettings,
  type ExperimentInput,
  type ExperimentResult,
  runExperiment,
} from './experiment.ts';
import type { SimulationReport } from './output.ts';
import { StepTimeModel } from './roofline.ts';
import type { LoadMethod, Trace } from './trace.ts';

/**
 * Everything a simulation needs, from the same inputs as `tokenscaler kv` plus the roofline and
 * the policies: builds the capacity and the step-time model, runs the experiment and assembles the
 * report. Shared by the CLI and the benchmark.
 */

export interface ScenarioInput extends Omit<ExperimentInput, 'capacity' | 'stepModel' | 'engine' | 'trace'> {
  trace: Trace;
  loadMultiplier: number;
  loadMethod: LoadMethod;
  seed: number;
  model: ModelArchitecture;
  /** GPU preset id, or a label for a custom GPU. */
  gpuLabel: string;
  capacityInput: CapacityInput;
  peakDenseTflopsPerGpu: number;
  hbmBandwidthGBpsPerGpu: number;
  computeEfficiency: number;
  memoryEfficiency: number;
  stepOverheadSeconds: number;
  maxNumBatchedTokens?: number;
  maxNumSeqs?: number;
}

export interface ScenarioOutput {
  report: SimulationReport;
  result: ExperimentResult;
}

/**
 * vLLM's scheduler defaults for the OpenAI server (EngineArgs.get_batch_defaults in
 * vllm/engine/arg_utils.py): GPUs with at least 70 GiB that are not A100s get
 * max_num_batched_tokens 8192 and max_num_seqs 1024; others 2048 and 256.
 */
export function vllmBatchDefaults(
  gpuMemoryGiB: number,
  gpuLabel: string,
): { maxNumBatchedTokens: number; maxNumSeqs: number } {
  const large = gpuMemoryGiB >= 70 && !gpuLabel.toLowerCase().includes('a100');
  return large
    ? { maxNumBatchedTokens: 8192, maxNumSeqs: 1024 }
    : { maxNumBatchedTokens: 2048, maxNumSeqs: 256 };
}

export interface FleetModel {
  capacity: KvCapacity;
  stepModel: StepTimeModel;
  engine: EngineSettings;
  activeParameterBasis: 'reference-active' | 'total-parameters';
}

/** The replica model: KV capacity, step-time roofline and scheduler limits. */
export function buildFleetModel(
  input: Pick<
    ScenarioInput,
    | 'model'
    | 'gpuLabel'
    | 'capacityInput'
    | 'peakDenseTflopsPerGpu'
    | 'hbmBandwidthGBpsPerGpu'
    | 'computeEfficiency'
    | 'memoryEfficiency'
    | 'stepOverheadSeconds'
    | 'maxNumBatchedTokens'
    | 'maxNumSeqs'
  >,
): FleetModel {
  const capacity = computeCapacity(input.capacityInput);
  if (!capacity.fits) {
    throw new InvalidInputError(
      '--model',
      `${input.model.id} does not fit ${capacity.gpus} x ${input.gpuLabel} (KV budget ${(capacity.kvBudgetBytesPerGpu / 2 ** 30).toFixed(2)} GiB per GPU); run 'tokenscaler kv' with the same flags for what would fit`,
    );
  }
  const active = activeParameters(input.model);
  if (active === undefined) {
    throw new InvalidInputError(
      '--model',
      `the parameter count of ${input.model.id} is unknown, and the step-time model needs it; use a preset or a config.json with vocab_size, hidden_size and intermediate_size`,
    );
  }
  const batch = vllmBatchDefaults(input.capacityInput.gpuMemoryGiB, input.gpuLabel);
  const engine = {
    blockSize: input.capacityInput.blockSize,
    maxNumBatchedTokens: input.maxNumBatchedTokens ?? batch.maxNumBatchedTokens,
    maxNumSeqs: input.maxNumSeqs ?? batch.maxNumSeqs,
  };
  const stepModel = new StepTimeModel({
    model: input.model,
    capacity,
    activeParameters: active.count,
    peakTflopsPerGpu: input.peakDenseTflopsPerGpu,
    hbmBandwidthGBpsPerGpu: input.hbmBandwidthGBpsPerGpu,
    computeEfficiency: input.computeEfficiency,
    memoryEfficiency: input.memoryEfficiency,
    stepOverheadSeconds: input.stepOverheadSeconds,
  });
  return { capacity, stepModel, engine, activeParameterBasis: active.basis };
}

export function runScenario(input: ScenarioInput): ScenarioOutput {
  const { capacity, stepModel, engine, activeParameterBasis } = buildFleetModel(input);
  const result = runExperiment({ ...input, capacity, stepModel, engine });
  const requests = input.trace.requests;
  const notes = [...input.trace.notes, ...capacity.notes, ...result.notes];
  if (activeParameterBasis === 'total-parameters') {
    notes.push(
      `the step-time model counts every parameter of ${input.model.id} as active (no active-parameter figure is known; an MoE model computes less per token)`,
    );
  }
  const report: SimulationReport = {
    trace: {
      name: input.trace.name,
      description: input.trace.description,
      requests: requests.length,
      durationSeconds: requests.length > 0 ? (requests[requests.length - 1]?.arrivalSeconds ?? 0) : 0,
      loadMultiplier: input.loadMultiplier,
      loadMethod: input.loadMethod,
    },
    fleet: {
      model: input.model.id,
      gpu: input.gpuLabel,
      tensorParallel: capacity.tensorParallel,
      pipelineParallel: capacity.pipelineParallel,
      gpusPerReplica: capacity.gpus,
      tokensPerReplica: capacity.tokensPerReplica,
      kvBytesPerToken: capacity.kvBytesPerToken,
      prefillTokensPerSecondPerReplica: Math.round(result.prefillTokensPerSecondPerReplica),
      decodeStepSeconds: stepModel.decodeStepSeconds(64, 2000),
      peakDenseTflopsPerGpu: input.peakDenseTflopsPerGpu,
      hbmBandwidthGBpsPerGpu: input.hbmBandwidthGBpsPerGpu,
      computeEfficiency: input.computeEfficiency,
      memoryEfficiency: input.memoryEfficiency,
      stepOverheadSeconds: input.stepOverheadSeconds,
      maxNumBatchedTokens: engine.maxNumBatchedTokens,
      maxNumSeqs: engine.maxNumSeqs,
      coldStartSeconds: input.coldStartSeconds,
      drainGraceSeconds: input.drainGraceSeconds,
      minReplicas: input.minReplicas,
      maxReplicas: input.maxReplicas,
      initialReplicas: result.initialReplicas,
      scrapeIntervalSeconds: input.scrapeIntervalSeconds,
      hpaSyncSeconds: input.hpaSyncSeconds,
    },
    slo: { ttftSeconds: input.slo.ttftSeconds, tpotSeconds: input.slo.tpotSeconds, goal: input.slo.goal },
    gpuHourCostUsd: input.gpuHourCostUsd,
    seed: input.seed,
    peerTuning: input.peerTuning,
    policies: result.runs.map((r) => r.summary),
    notes,
  };
  return { report, result };
}
