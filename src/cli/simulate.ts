import { readFile, writeFile } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { findGpuPerformance, gpuPerformanceIds } from '../capacity/gpu-performance.ts';
import { InvalidInputError } from '../errors.ts';
import { renderTable } from '../sim/output.ts';
import { renderHtml, renderSvg } from '../sim/plot.ts';
import {
  DEFAULT_HPA_CONTROLLER_CONFIG,
  POLICY_NAMES,
  type PolicyName,
  TOKENSCALER_HPA_BEHAVIOR,
  TOKENSCALER_RATE_WINDOW_SECONDS,
} from '../sim/policies.ts';
import { runScenario } from '../sim/scenario.ts';
import { parseTraceCsv, shapeTrace } from '../sim/trace.ts';
import { CAPACITY_FLAG_OPTIONS, capacityInputFromFlags } from './capacity-flags.ts';
import { type CommandHandler, EXIT_OK } from './command.ts';
import { parseEnumFlag, parseFlags, parseNumberFlag } from './flags.ts';

const HELP = `usage: tokenscaler simulate --trace <file.csv> [flags]

Replays a request trace against a simulated fleet of inference replicas under several autoscaling
policies and reports, per policy, SLO attainment, TTFT/TPOT percentiles, preemptions, GPU-hours and
cost. Each replica: KV capacity from the same model as 'tokenscaler kv', continuous batching with
chunked prefill (vLLM V1 scheduler), a roofline step time, preemption by recompute, cold start and
graceful drain. Each policy sees only sampled metrics and acts through an emulated HPA (or KPA).

trace
  --trace PATH                  CSV with arrival_s,input_tokens,output_tokens (or a length-only file
                                with num_prefill_tokens,num_decode_tokens: then give --arrival-rate)
  --load-multiplier N           scale the load (default 1)
  --load-method overlay|compress  overlay: N time-shifted copies (default); compress: arrival_s / N
  --arrival-rate R              length-only files: Poisson arrivals, requests/s
  --duration S                  length-only files: seconds of arrivals (default 3600)
  --seed N                      seed of every random draw (default 1)

fleet (as 'tokenscaler kv')
  --model ID|PATH               model preset or Hugging Face config.json (default llama-3.1-70b)
  --gpu ID                      GPU preset (default h100-80gb); presets with roofline figures:
                                ${gpuPerformanceIds().join(', ')}
  --gpu-memory-gib N  --gpu-tflops N  --gpu-bandwidth-gbps N   a custom GPU (or overrides)
  --tp N (default 4)  --pp N (default 1)  --kv-dtype auto|bf16|fp16|fp8  --weights-gib N
  --weight-dtype bf16|fp16|fp8|int8|int4  --reserved-gib N (2)  --gpu-memory-utilization F (0.9)
  --block-size N (16)  --max-num-batched-tokens N  --max-num-seqs N   (vLLM defaults by GPU)
  --compute-efficiency F (0.6)  --memory-efficiency F (0.8)  --step-overhead-ms N (4)
  --cold-start S (180)  --drain-grace S (600)  --min-replicas N (1)  --max-replicas N (64)
  --initial-replicas N          replicas at t = 0 (default: sized for the first minutes at 80%)

control loop and SLO
  --scrape-interval S (5)  --hpa-sync S (15)
  --slo-ttft S (2)  --slo-tpot S (0.2)  --slo-goal F (0.99)  --gpu-hour-cost USD (2.5)
  --hpa-tolerance F (0.1)       kube-controller-manager --horizontal-pod-autoscaler-tolerance
  --tokenscaler-hpa-tolerance F  per-HPA tolerance (KEP-4951) on the HPA tokenscaler owns

policies
  --policies LIST               comma-separated, from: ${POLICY_NAMES.join(', ')} (default all)
  --peer-tuning match-cost|defaults  match-cost (default): each peer's threshold is tuned to spend at
                                least tokenscaler's GPU-hours, then compared on SLO; defaults: common
                                production thresholds
  --rps-target R  --concurrency-target N  --kv-target F  --queue-target N  --static-replicas N
                                fix a peer's threshold (no tuning for it)
  --target-kv-utilization F  --prefill-utilization F  --prefill-tokens-per-second N
  --queue-tolerance-tokens N  --demand-percentile P  --demand-window S  --scale-down-stabilization S
                                tokenscaler settings (TokenScaler spec defaults otherwise)
  --oracle-utilization F        fix the oracle's utilization (default: the highest meeting the goal)

output
  --json                        the report as JSON (policies: name, sloAttainment, gpuHours, ...)
  --plot PATH.svg|PATH.html     draw demand vs capacity and replicas per policy, and the table
  --quiet                       no progress lines on stderr
`;

const DEFAULTS = {
  model: 'llama-3.1-70b',
  gpu: 'h100-80gb',
  tp: 4,
  reservedGiB: 2,
  gpuMemoryUtilization: 0.9,
  blockSize: 16,
  computeEfficiency: 0.6,
  memoryEfficiency: 0.8,
  stepOverheadMs: 4,
  coldStartSeconds: 180,
  drainGraceSeconds: 600,
  minReplicas: 1,
  maxReplicas: 64,
  scrapeIntervalSeconds: 5,
  hpaSyncSeconds: 15,
  // Interactive targets a 70B model on H100s can hold: first token within 2 s; 200 ms per output
  // token (5 tokens/s, about reading speed). Tighter TPOT targets are dominated by one prefill stall:
  // a decode co-scheduled with an 8,192-token chunk waits ~0.5 s, whatever the fleet size.
  sloTtftSeconds: 2,
  sloTpotSeconds: 0.2,
  sloGoal: 0.99,
  gpuHourCostUsd: 2.5,
  seed: 1,
};

export const runSimulate: CommandHandler = async (args, io) => {
  const { values } = parseFlags(args, {
    trace: { type: 'string' },
    'load-multiplier': { type: 'string' },
    'load-method': { type: 'string' },
    'arrival-rate': { type: 'string' },
    duration: { type: 'string' },
    seed: { type: 'string' },
    ...CAPACITY_FLAG_OPTIONS,
    'gpu-tflops': { type: 'string' },
    'gpu-bandwidth-gbps': { type: 'string' },
    'max-num-batched-tokens': { type: 'string' },
    'max-num-seqs': { type: 'string' },
    'compute-efficiency': { type: 'string' },
    'memory-efficiency': { type: 'string' },
    'step-overhead-ms': { type: 'string' },
    'cold-start': { type: 'string' },
    'drain-grace': { type: 'string' },
    'min-replicas': { type: 'string' },
    'max-replicas': { type: 'string' },
    'initial-replicas': { type: 'string' },
    'scrape-interval': { type: 'string' },
    'hpa-sync': { type: 'string' },
    'hpa-tolerance': { type: 'string' },
    'tokenscaler-hpa-tolerance': { type: 'string' },
    'slo-ttft': { type: 'string' },
    'slo-tpot': { type: 'string' },
    'slo-goal': { type: 'string' },
    'gpu-hour-cost': { type: 'string' },
    policies: { type: 'string' },
    'peer-tuning': { type: 'string' },
    'rps-target': { type: 'string' },
    'concurrency-target': { type: 'string' },
    'kv-target': { type: 'string' },
    'queue-target': { type: 'string' },
    'static-replicas': { type: 'string' },
    'target-kv-utilization': { type: 'string' },
    'prefill-utilization': { type: 'string' },
    'prefill-tokens-per-second': { type: 'string' },
    'queue-tolerance-tokens': { type: 'string' },
    'demand-percentile': { type: 'string' },
    'demand-window': { type: 'string' },
    'scale-down-stabilization': { type: 'string' },
    'oracle-utilization': { type: 'string' },
    json: { type: 'boolean', default: false },
    plot: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    io.stdout(HELP);
    return EXIT_OK;
  }
  if (values.trace === undefined) {
    throw new InvalidInputError('--trace', 'is required: a CSV with arrival_s,input_tokens,output_tokens');
  }
  const num = (flag: string, rule: Parameters<typeof parseNumberFlag>[2]) =>
    parseNumberFlag(flag, (values as unknown as Record<string, string | undefined>)[flag], rule);
  const positive = { min: 0, max: 1e9, exclusiveMin: true };
  const share = { min: 0, max: 1, exclusiveMin: true };
  const count = { min: 1, max: 100_000, integer: true };

  const plotPath = values.plot === undefined ? undefined : resolve(io.cwd, values.plot);
  const plotKind = plotPath === undefined ? undefined : extname(plotPath).toLowerCase();
  if (plotKind !== undefined && plotKind !== '.svg' && plotKind !== '.html') {
    throw new InvalidInputError(
      '--plot',
      `${JSON.stringify(values.plot)} is not allowed; expected a path ending in .svg or .html`,
    );
  }
  const policies = parsePolicies(values.policies);
  const loadMultiplier = num('load-multiplier', { min: 0, max: 10_000, exclusiveMin: true }) ?? 1;
  const loadMethod =
    parseEnumFlag('load-method', values['load-method'], ['overlay', 'compress'] as const) ?? 'overlay';
  const seed = num('seed', { min: 0, max: 2 ** 31 - 1, integer: true }) ?? DEFAULTS.seed;
  const arrivalRate = num('arrival-rate', positive);
  const duration = num('duration', positive);

  // The fleet, as 'tokenscaler kv' reads it.
  const {
    input: capacityInput,
    model,
    gpu,
  } = await capacityInputFromFlags(values, io.cwd, {
    model: DEFAULTS.model,
    gpu: DEFAULTS.gpu,
    tensorParallel: DEFAULTS.tp,
    reservedGiB: DEFAULTS.reservedGiB,
    gpuMemoryUtilization: DEFAULTS.gpuMemoryUtilization,
    blockSize: DEFAULTS.blockSize,
  });
  const performance = gpu === undefined ? undefined : findGpuPerformance(gpu.id);
  const peakTflops = num('gpu-tflops', positive) ?? performance?.peakDenseBf16Tflops;
  const bandwidth = num('gpu-bandwidth-gbps', positive) ?? performance?.hbmBandwidthGBps;
  if (peakTflops === undefined || bandwidth === undefined) {
    throw new InvalidInputError(
      gpu === undefined ? '--gpu-tflops' : '--gpu',
      `${gpu === undefined ? 'a custom GPU' : `preset ${gpu.id}`} has no roofline figures; give --gpu-tflops (peak dense BF16 TFLOP/s per GPU) and --gpu-bandwidth-gbps (HBM GB/s per GPU), or use one of ${gpuPerformanceIds().join(', ')}`,
    );
  }
  const minReplicas = num('min-replicas', count) ?? DEFAULTS.minReplicas;
  const maxReplicas = num('max-replicas', count) ?? Math.max(DEFAULTS.maxReplicas, minReplicas);
  if (minReplicas > maxReplicas) {
    throw new InvalidInputError('--min-replicas', `${minReplicas} is above --max-replicas ${maxReplicas}`);
  }
  const initialReplicas = num('initial-replicas', count);
  const maxNumBatchedTokens = num('max-num-batched-tokens', { min: 1, max: 1_000_000, integer: true });
  const maxNumSeqs = num('max-num-seqs', { min: 1, max: 100_000, integer: true });
  const prefillTokensPerSecond = num('prefill-tokens-per-second', positive);
  const targetKv = num('target-kv-utilization', share);
  const prefillUtilization = num('prefill-utilization', share);
  const queueTolerance = num('queue-tolerance-tokens', { min: 0, max: 1e12 });
  const demandPercentile = num('demand-percentile', { min: 0, max: 100, exclusiveMin: true });
  const demandWindow = num('demand-window', { min: 1, max: 86_400, integer: true });
  const stabilization = num('scale-down-stabilization', { min: 0, max: 86_400, integer: true });
  const oracleUtilization = num('oracle-utilization', share);
  const hpaTolerance = num('hpa-tolerance', { min: 0, max: 10 });
  const tokenscalerHpaTolerance = num('tokenscaler-hpa-tolerance', { min: 0, max: 10 });
  const rps = num('rps-target', positive);
  const concurrency = num('concurrency-target', positive);
  const kvTarget = num('kv-target', share);
  const queueTarget = num('queue-target', positive);
  const staticReplicas = num('static-replicas', count);

  // The trace.
  const tracePath = resolve(io.cwd, values.trace);
  let text: string;
  try {
    text = await readFile(tracePath, 'utf8');
  } catch (error) {
    throw new InvalidInputError('--trace', `cannot read ${tracePath}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const name = basename(tracePath).replace(/\.csv$/i, '');
  const trace = shapeTrace(parseTraceCsv(text), {
    name,
    loadMultiplier,
    loadMethod,
    seed,
    ...(arrivalRate !== undefined ? { arrivalRatePerSecond: arrivalRate } : {}),
    ...(duration !== undefined ? { durationSeconds: duration } : {}),
  });

  const progress = values.quiet
    ? undefined
    : (message: string) => io.stderr(`tokenscaler simulate: ${message}\n`);
  const { report, result } = runScenario({
    trace,
    loadMultiplier,
    loadMethod,
    seed,
    model,
    gpuLabel: gpu?.id ?? `${capacityInput.gpuMemoryGiB} GiB GPU`,
    capacityInput,
    peakDenseTflopsPerGpu: peakTflops,
    hbmBandwidthGBpsPerGpu: bandwidth,
    computeEfficiency: num('compute-efficiency', share) ?? DEFAULTS.computeEfficiency,
    memoryEfficiency: num('memory-efficiency', share) ?? DEFAULTS.memoryEfficiency,
    stepOverheadSeconds: (num('step-overhead-ms', { min: 0, max: 10_000 }) ?? DEFAULTS.stepOverheadMs) / 1000,
    ...(maxNumBatchedTokens !== undefined ? { maxNumBatchedTokens } : {}),
    ...(maxNumSeqs !== undefined ? { maxNumSeqs } : {}),
    coldStartSeconds: num('cold-start', { min: 0, max: 86_400 }) ?? DEFAULTS.coldStartSeconds,
    drainGraceSeconds: num('drain-grace', { min: 0, max: 86_400 }) ?? DEFAULTS.drainGraceSeconds,
    scrapeIntervalSeconds: num('scrape-interval', { min: 0.5, max: 600 }) ?? DEFAULTS.scrapeIntervalSeconds,
    hpaSyncSeconds: num('hpa-sync', { min: 1, max: 3600 }) ?? DEFAULTS.hpaSyncSeconds,
    ...(hpaTolerance !== undefined
      ? { hpaConfig: { ...DEFAULT_HPA_CONTROLLER_CONFIG, tolerance: hpaTolerance } }
      : {}),
    minReplicas,
    maxReplicas,
    ...(initialReplicas !== undefined ? { initialReplicas } : {}),
    slo: {
      ttftSeconds: num('slo-ttft', positive) ?? DEFAULTS.sloTtftSeconds,
      tpotSeconds: num('slo-tpot', positive) ?? DEFAULTS.sloTpotSeconds,
      goal: num('slo-goal', share) ?? DEFAULTS.sloGoal,
    },
    gpuHourCostUsd: num('gpu-hour-cost', { min: 0, max: 1e6 }) ?? DEFAULTS.gpuHourCostUsd,
    policies,
    tokenscaler: {
      controllerIntervalSeconds:
        num('scrape-interval', { min: 0.5, max: 600 }) ?? DEFAULTS.scrapeIntervalSeconds,
      rateWindowSeconds: TOKENSCALER_RATE_WINDOW_SECONDS,
      hpaBehavior:
        tokenscalerHpaTolerance === undefined
          ? TOKENSCALER_HPA_BEHAVIOR
          : {
              scaleUp: { ...TOKENSCALER_HPA_BEHAVIOR.scaleUp, tolerance: tokenscalerHpaTolerance },
              scaleDown: { ...TOKENSCALER_HPA_BEHAVIOR.scaleDown, tolerance: tokenscalerHpaTolerance },
            },
      ...(targetKv !== undefined ? { targetKvCacheUtilization: targetKv } : {}),
      ...(prefillUtilization !== undefined ? { prefillUtilization } : {}),
      ...(prefillTokensPerSecond !== undefined
        ? { prefillTokensPerSecondPerReplica: prefillTokensPerSecond }
        : {}),
      ...(queueTolerance !== undefined ? { queueToleranceTokens: queueTolerance } : {}),
      ...(demandPercentile !== undefined ? { demandPercentile } : {}),
      ...(demandWindow !== undefined ? { demandWindowSeconds: demandWindow } : {}),
      ...(stabilization !== undefined ? { scaleDownStabilizationSeconds: stabilization } : {}),
    },
    peers: {
      ...(rps !== undefined ? { rpsPerReplica: rps } : {}),
      ...(concurrency !== undefined ? { concurrencyPerReplica: concurrency } : {}),
      ...(kvTarget !== undefined ? { kvUtilization: kvTarget } : {}),
      ...(queueTarget !== undefined ? { waitingRequestsPerReplica: queueTarget } : {}),
      ...(staticReplicas !== undefined ? { staticReplicas } : {}),
    },
    peerTuning:
      parseEnumFlag('peer-tuning', values['peer-tuning'], ['match-cost', 'defaults'] as const) ??
      'match-cost',
    ...(oracleUtilization !== undefined ? { oracleUtilization } : {}),
    ...(progress !== undefined ? { onProgress: progress } : {}),
    clockMs: io.nowMs,
  });

  if (plotPath !== undefined) {
    const content =
      plotKind === '.html'
        ? renderHtml(report, result.runs, result.demand)
        : renderSvg(report, result.runs, result.demand);
    try {
      await writeFile(plotPath, content, 'utf8');
    } catch (error) {
      throw new InvalidInputError('--plot', `cannot write ${plotPath}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    progress?.(`wrote ${plotPath}`);
  }
  io.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderTable(report));
  return EXIT_OK;
};

function parsePolicies(raw: string | undefined): PolicyName[] {
  if (raw === undefined) return [...POLICY_NAMES];
  const names = raw
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const unknown = names.filter((n) => !(POLICY_NAMES as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length > 0) {
    throw new InvalidInputError(
      '--policies',
      `${JSON.stringify(raw)} is not allowed; expected a comma-separated list of ${POLICY_NAMES.join(', ')}`,
    );
  }
  // Keep the canonical order and drop duplicates.
  return POLICY_NAMES.filter((n) => names.includes(n));
}
