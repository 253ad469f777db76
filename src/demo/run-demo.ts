import { computeCapacity, replicaCapacityInput } from '../capacity/kv-model.ts';
import { requireGpuPreset, requireModelPreset } from '../capacity/presets.ts';
import { type ControllerRuntime, startControllerRuntime } from '../cli/controller-runtime.ts';
import { parseScalerDocuments } from '../config/scaler-files.ts';
import type { ScalerDefinition } from '../config/tokenscaler-spec.ts';
import {
  type HpaSpec,
  type HpaState,
  initialHpaState,
  quantityMilliValue,
  reconcileHpa,
} from '../core/hpa.ts';
import { nearestRankPercentile } from '../core/percentile.ts';
import type { Logger } from '../reconcile/ports.ts';
import { parseTraceCsv, shapeTrace, type TraceRequest } from '../sim/trace.ts';
import { DemoFleet, type FleetOptions } from './fleet.ts';
import { FleetMetricsServer } from './fleet-server.ts';

/**
 * The embedded default (`tokenscaler demo`, the README's main job): the real controller in standalone
 * mode against a simulated vLLM fleet that serves real /metrics on loopback, replaying a shipped
 * trace faster than real time. An emulated HPA reads the served external metric over HTTP, exactly
 * as kube-controller-manager would, and scales the fleet. Simulated time drives everything (the
 * fleet, the controller's clock, the HPA), so windows and cold starts keep their meaning at any speed.
 */
export interface DemoOptions {
  traceCsv: string;
  traceName: string;
  modelId: string;
  gpuId: string;
  /** Simulated seconds per real second. */
  speed: number;
  /** Arrival times divided by this (time compression), to load a fleet of several replicas. */
  loadMultiplier: number;
  /** Stop after this many real seconds; undefined: at the end of the trace. */
  durationSeconds?: number;
  apiPort: number;
  coldStartSeconds: number;
}

export interface DemoIo {
  write: (text: string) => void;
  isTty: boolean;
  signal: AbortSignal;
  logger: Logger;
  realNowMs: () => number;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface DemoSummary {
  simulatedSeconds: number;
  requestsSubmitted: number;
  requestsCompleted: number;
  ttftP50Seconds?: number;
  ttftP99Seconds?: number;
  replicaSeconds: number;
  peakReplicas: number;
  bindingConstraints: Record<string, number>;
}

const NAMESPACE = 'demo';
const SCALER = 'llama-demo';
// A fleet already serving when the demo begins, as a production Deployment would be.
const INITIAL_REPLICAS = 3;
const TICK_SECONDS = 15;
const HPA_SYNC_SECONDS = 15;
const FRAME_MS = 100;
const MAX_STEP_SECONDS = 0.25;

export function demoScalerYaml(modelId: string, gpuId: string, maxReplicas: number): string {
  return `apiVersion: tokenscaler.dev/v1alpha1
kind: TokenScaler
metadata: {name: ${SCALER}, namespace: ${NAMESPACE}}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: vllm-demo}
  minReplicas: 1
  maxReplicas: ${maxReplicas}
  model: {preset: ${modelId}}
  accelerator: {preset: ${gpuId}}
  engine: {kind: vllm, gpuMemoryUtilization: 0.9, blockSize: 16, reservedGiB: 2}
  metrics:
    scrape: {podSelector: {matchLabels: {app: vllm-demo}}, port: 8000}
  target: {kvCacheUtilization: 0.8}
  demand: {percentile: 95, windowSeconds: 300}
  fallback: {afterSeconds: 120}
  behavior: {scaleDownStabilizationSeconds: 120}
`;
}

export async function runDemo(options: DemoOptions, io: DemoIo): Promise<DemoSummary> {
  const model = requireModelPreset(options.modelId, '--model');
  const gpu = requireGpuPreset(options.gpuId, '--gpu');
  const capacity = computeCapacity(replicaCapacityInput(model, gpu.memoryGiB));
  const maxReplicas = 16;
  const [definition] = parseScalerDocuments(
    demoScalerYaml(options.modelId, options.gpuId, maxReplicas),
    'embedded demo scaler',
  );
  const scaler = definition as ScalerDefinition;
  const trace = shapeTrace(parseTraceCsv(options.traceCsv, 'trace'), {
    name: options.traceName,
    loadMultiplier: options.loadMultiplier,
    loadMethod: 'compress',
    seed: 1,
  });
  const requests = trace.requests;
  const traceEndSeconds = (requests[requests.length - 1] as TraceRequest).arrivalSeconds;

  // Roofline-flavoured engine figures for a dense model on one GPU (illustrative, not measured):
  // decode streams the weights once per step, prefill is compute-bound.
  const weightsBytes = capacity.weightsBytes;
  const fleetOptions: FleetOptions = {
    kvCapacityTokens: capacity.tokensPerReplica,
    blockSize: 16,
    prefillTokensPerSecond: 4_000,
    baseTimePerOutputTokenSeconds: weightsBytes / (gpu.hbmBandwidthGBps * 1e9),
    timePerOutputTokenPerRunningSeconds: 0.0004,
    coldStartSeconds: options.coldStartSeconds,
    modelName: options.modelId,
  };
  const fleet = new DemoFleet(fleetOptions, INITIAL_REPLICAS);
  const fleetServer = new FleetMetricsServer(fleet);
  await fleetServer.listen();

  const epochMs = io.realNowMs();
  const simNowMs = () => epochMs + fleet.nowSeconds * 1000;
  let runtime: ControllerRuntime | undefined;
  const summary: DemoSummary = {
    simulatedSeconds: 0,
    requestsSubmitted: 0,
    requestsCompleted: 0,
    replicaSeconds: 0,
    peakReplicas: INITIAL_REPLICAS,
    bindingConstraints: {},
  };
  try {
    runtime = await startControllerRuntime(
      {
        tickSeconds: TICK_SECONDS,
        api: {
          bindAddress: '127.0.0.1',
          port: options.apiPort,
          insecureServing: true,
          requestHeader: {
            allowedNames: [],
            usernameHeaders: ['x-remote-user'],
            groupHeaders: ['x-remote-group'],
            extraHeaderPrefixes: ['x-remote-extra-'],
          },
          reloadIntervalSeconds: 10,
          shutdownDelaySeconds: 0,
          drainTimeoutSeconds: 2,
        },
        metricsListen: { host: '127.0.0.1', port: 0 },
      },
      {
        logger: io.logger,
        nowMs: simNowMs,
        fetch: (input, init) => fetch(input, init),
        resolverFor: () => async () => fleetServer.endpoints(),
        replicas: { read: async () => ({ current: fleet.currentReplicas, ready: fleet.readyReplicas }) },
      },
    );
    await runtime.setScalers([scaler]);

    const metricPath = `/apis/external.metrics.k8s.io/v1beta1/namespaces/${NAMESPACE}/tokenscaler_desired_replicas?labelSelector=${encodeURIComponent(`tokenscaler.dev/name=${SCALER}`)}`;
    const hpaSpec: HpaSpec = {
      minReplicas: 1,
      maxReplicas,
      metrics: [
        {
          type: 'External',
          name: 'tokenscaler_desired_replicas',
          target: { type: 'AverageValue', averageValueMilli: 1000 },
        },
      ],
      // tokenscaler stabilizes scale-down itself; the HPA it owns follows without a second window.
      behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
    };
    let hpaState: HpaState = initialHpaState();
    let nextRequest = 0;
    let nextTickAt = 0;
    let nextHpaAt = HPA_SYNC_SECONDS / 2;
    let lastRenderMs = 0;
    const ttftWindow: { at: number; value: number }[] = [];
    const history: number[] = [];
    const startedRealMs = io.realNowMs();

    const header = [
      `tokenscaler demo: ${model.name} on 1 x ${gpu.id} per replica, simulated vLLM fleet (KV ${capacity.tokensPerReplica.toLocaleString('en-US')} tokens per replica)`,
      `trace: ${trace.description}; replayed at ${options.speed}x real time`,
      `metrics API: ${runtime.api.url} (plain HTTP, demo only)   controller /metrics: ${runtime.metricsServer?.url ?? 'off'}`,
      `try:  curl -s '${runtime.api.url}${metricPath}'`,
      `      kubectl --server=${runtime.api.url} get --raw '${metricPath}'`,
    ];
    if (!io.isTty) io.write(`${header.join('\n')}\n\n`);

    while (!io.signal.aborted) {
      const elapsedRealSeconds = (io.realNowMs() - startedRealMs) / 1000;
      if (options.durationSeconds !== undefined && elapsedRealSeconds >= options.durationSeconds) break;
      const simTarget = elapsedRealSeconds * options.speed;
      while (fleet.nowSeconds < simTarget) {
        const dt = Math.min(MAX_STEP_SECONDS, simTarget - fleet.nowSeconds);
        while (
          nextRequest < requests.length &&
          (requests[nextRequest] as TraceRequest).arrivalSeconds <= fleet.nowSeconds + dt
        ) {
          const r = requests[nextRequest] as TraceRequest;
          fleet.submit({
            id: nextRequest,
            inputTokens: Math.max(1, r.inputTokens),
            outputTokens: Math.max(1, r.outputTokens),
          });
          nextRequest += 1;
        }
        fleet.advance(dt);
        summary.replicaSeconds += fleet.currentReplicas * dt;
        for (const value of fleet.takeTtftSeconds()) ttftWindow.push({ at: fleet.nowSeconds, value });
        if (fleet.nowSeconds >= nextTickAt) {
          nextTickAt += TICK_SECONDS;
          await runtime.tick(io.signal);
          const bound = runtime.reconciler.get(NAMESPACE, SCALER)?.decision?.bindingConstraint;
          if (bound !== undefined)
            summary.bindingConstraints[bound] = (summary.bindingConstraints[bound] ?? 0) + 1;
          if (!io.isTty) io.write(`${statusLine(runtime, fleet)}\n`);
        }
        if (fleet.nowSeconds >= nextHpaAt) {
          nextHpaAt += HPA_SYNC_SECONDS;
          hpaState = await syncHpa(runtime.api.url + metricPath, hpaSpec, hpaState, fleet, io);
          summary.peakReplicas = Math.max(summary.peakReplicas, fleet.currentReplicas);
          history.push(fleet.currentReplicas);
        }
      }
      while (ttftWindow.length > 0 && (ttftWindow[0] as { at: number }).at < fleet.nowSeconds - 60)
        ttftWindow.shift();
      if (io.isTty && io.realNowMs() - lastRenderMs >= 500) {
        lastRenderMs = io.realNowMs();
        io.write(
          renderPanel(
            header,
            runtime,
            fleet,
            ttftWindow.map((t) => t.value),
            history,
            traceEndSeconds,
            nextRequest,
            requests.length,
          ),
        );
      }
      if (nextRequest >= requests.length && fleet.snapshot().every((r) => r.running === 0 && r.waiting === 0))
        break;
      await io.sleep(FRAME_MS, io.signal).catch(() => undefined);
    }

    summary.simulatedSeconds = fleet.nowSeconds;
    summary.requestsSubmitted = nextRequest;
    summary.requestsCompleted = fleet.completedRequests;
    const ttfts = fleet.allTtftSeconds();
    const p50 = nearestRankPercentile(ttfts, 50);
    const p99 = nearestRankPercentile(ttfts, 99);
    if (p50 !== undefined) summary.ttftP50Seconds = p50;
    if (p99 !== undefined) summary.ttftP99Seconds = p99;
    return summary;
  } finally {
    await runtime?.close();
    await fleetServer.close();
  }
}

/** One HPA sync: read the external metric over HTTP and apply the HPA's rules (src/core/hpa.ts). */
async function syncHpa(
  url: string,
  spec: HpaSpec,
  state: HpaState,
  fleet: DemoFleet,
  io: DemoIo,
): Promise<HpaState> {
  let reading: { kind: 'values'; valuesMilli: number[] } | { kind: 'error'; message: string };
  try {
    const response = await fetch(url, { signal: AbortSignal.any([io.signal, AbortSignal.timeout(5_000)]) });
    const body = (await response.json()) as { items?: { value: string }[]; message?: string };
    reading =
      response.ok && body.items !== undefined
        ? { kind: 'values', valuesMilli: body.items.map((i) => quantityMilliValue(i.value)) }
        : { kind: 'error', message: body.message ?? `HTTP ${response.status}` };
  } catch (error) {
    reading = { kind: 'error', message: error instanceof Error ? error.message : String(error) };
  }
  const result = reconcileHpa(
    spec,
    { specReplicas: fleet.currentReplicas, statusReplicas: fleet.snapshot().length, readings: [reading] },
    state,
    fleet.nowSeconds,
  );
  if (result.rescale) fleet.scaleTo(result.desiredReplicas);
  return result.state;
}

function statusLine(runtime: ControllerRuntime, fleet: DemoFleet): string {
  const state = runtime.reconciler.get(NAMESPACE, SCALER);
  const d = state?.decision;
  const t = formatClock(fleet.nowSeconds);
  if (d === undefined) return `${t}  waiting for the first decision`;
  return `${t}  demand ${fmt(d.demandTokens)} tokens  capacity ${fmt(state?.tokensPerReplica)}/replica  desired ${d.desiredReplicas}  current ${fleet.currentReplicas} (ready ${fleet.readyReplicas})  ${d.reason}`;
}

function renderPanel(
  header: string[],
  runtime: ControllerRuntime,
  fleet: DemoFleet,
  ttfts: number[],
  history: number[],
  traceEndSeconds: number,
  submitted: number,
  total: number,
): string {
  const state = runtime.reconciler.get(NAMESPACE, SCALER);
  const d = state?.decision;
  const inFlight = fleet.snapshot().reduce((n, r) => n + r.running + r.waiting, 0);
  const p50 = nearestRankPercentile(ttfts, 50);
  const p99 = nearestRankPercentile(ttfts, 99);
  const lines = [
    ...header,
    '',
    `simulated time ${formatClock(fleet.nowSeconds)} of ${formatClock(traceEndSeconds)}   requests ${submitted.toLocaleString('en-US')}/${total.toLocaleString('en-US')} sent, ${inFlight} in flight, ${fleet.completedRequests.toLocaleString('en-US')} done`,
    `demand     ${fmt(d?.demandTokens).padStart(10)} tokens (P95 over 300 s)   in flight ${fmt(d?.inflightTokens)}   waiting ${fmt(d?.waitingTokens)}`,
    `capacity   ${fmt(state?.tokensPerReplica).padStart(10)} tokens per replica (${state?.capacitySource ?? '-'}-reported; model ${fmt(state?.capacity?.tokensPerReplica)})`,
    `replicas   desired ${d?.desiredReplicas ?? '-'}   current ${fleet.currentReplicas}   ready ${fleet.readyReplicas}`,
    `bound by   ${d?.reason ?? 'waiting for the first decision'}`,
    `TTFT, last minute: p50 ${p50 === undefined ? '-' : `${p50.toFixed(2)} s`}   p99 ${p99 === undefined ? '-' : `${p99.toFixed(2)} s`}`,
    `replicas per HPA sync: ${sparkline(history.slice(-60))}`,
    '',
    'Ctrl-C stops the demo.',
  ];
  return `\x1b[H\x1b[2J${lines.join('\n')}\n`;
}

const BARS = '▁▂▃▄▅▆▇█';
function sparkline(values: number[]): string {
  if (values.length === 0) return '';
  const max = Math.max(...values, 1);
  return (
    values.map((v) => BARS[Math.min(BARS.length - 1, Math.floor((v / max) * (BARS.length - 1)))]).join('') +
    ` (now ${values[values.length - 1]}, peak ${max})`
  );
}

function fmt(n: number | undefined): string {
  return n === undefined ? '-' : Math.round(n).toLocaleString('en-US');
}

function formatClock(seconds: number): string {
  const s = Math.floor(seconds);
  return `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}
