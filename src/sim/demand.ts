import type { OracleSchedule } from './policies.ts';
import type { StepTimeModel } from './roofline.ts';
import type { TraceRequest } from './trace.ts';

/**
 * The load a trace offers, independent of any policy: how many replicas it needs over time if each
 * ran at 100% of its KV memory or of its prefill compute, whichever binds. The plots draw it as
 * "demand", and the oracle provisions from it with perfect foresight.
 *
 * - KV term: tokens in flight (prompt + the request's true output length) / tokens per replica,
 *   where a request is in flight from its arrival for its unloaded service time: its prefill plus
 *   (output - 1) decode steps at a nominal batch.
 * - Prefill term: prompt tokens arriving per second (averaged over `smoothingSeconds`, centred)
 *   / prompt tokens per second one replica prefills.
 *
 * Example: 1.9M tokens in flight at 477,456 tokens per replica = 3.98; 95,000 prompt tokens/s at
 * 16,000 per replica = 5.94 -> the demand is 5.94 replicas (prefill binds).
 */

export interface DemandSeries {
  stepSeconds: number;
  /** Sample i is at i x stepSeconds. */
  kvReplicas: Float64Array;
  prefillReplicas: Float64Array;
  /** max(kv, prefill) per sample. */
  replicas: Float64Array;
}

export interface DemandInput {
  requests: readonly TraceRequest[];
  tokensPerReplica: number;
  prefillTokensPerSecondPerReplica: number;
  stepModel: StepTimeModel;
  chunkTokens: number;
  /** Decode batch used for the unloaded service time. */
  nominalDecodeBatch: number;
  stepSeconds: number;
  smoothingSeconds: number;
}

export function offeredDemand(input: DemandInput): DemandSeries {
  const { requests, stepSeconds } = input;
  let meanContext = 0;
  for (const r of requests) meanContext += r.inputTokens + r.outputTokens / 2;
  meanContext /= Math.max(1, requests.length);
  const tpot = input.stepModel.decodeStepSeconds(input.nominalDecodeBatch, meanContext);
  const prefillCache = new Map<number, number>();
  const serviceSeconds = (r: TraceRequest) => {
    let prefill = prefillCache.get(r.inputTokens);
    if (prefill === undefined) {
      prefill = r.inputTokens / input.stepModel.prefillTokensPerSecond(input.chunkTokens, r.inputTokens);
      prefillCache.set(r.inputTokens, prefill);
    }
    return prefill + Math.max(0, r.outputTokens - 1) * tpot;
  };
  let last = 0;
  for (const r of requests) last = Math.max(last, r.arrivalSeconds + serviceSeconds(r));
  const n = Math.ceil(last / stepSeconds) + 2;
  const kvDelta = new Float64Array(n + 1);
  const prompt = new Float64Array(n + 1);
  for (const r of requests) {
    const start = r.arrivalSeconds;
    const end = start + serviceSeconds(r);
    const tokens = r.inputTokens + r.outputTokens;
    // Token-seconds spread over the sample grid: each sample holds the tokens in flight at its instant.
    const i0 = Math.ceil(start / stepSeconds);
    const i1 = Math.ceil(end / stepSeconds);
    if (i1 > i0) {
      kvDelta[Math.min(i0, n)] = (kvDelta[Math.min(i0, n)] as number) + tokens;
      kvDelta[Math.min(i1, n)] = (kvDelta[Math.min(i1, n)] as number) - tokens;
    }
    const bin = Math.min(n - 1, Math.floor(start / stepSeconds));
    prompt[bin] = (prompt[bin] as number) + r.inputTokens;
  }
  const kvReplicas = new Float64Array(n);
  const prefillReplicas = new Float64Array(n);
  const replicas = new Float64Array(n);
  let inflight = 0;
  for (let i = 0; i < n; i++) {
    inflight += kvDelta[i] as number;
    kvReplicas[i] = Math.max(0, inflight) / input.tokensPerReplica;
  }
  // Centred moving average of the prompt-token arrival rate.
  const half = Math.max(0, Math.round(input.smoothingSeconds / stepSeconds / 2));
  let windowSum = 0;
  for (let i = 0; i < Math.min(n, half); i++) windowSum += prompt[i] as number;
  for (let i = 0; i < n; i++) {
    const add = i + half;
    if (add < n) windowSum += prompt[add] as number;
    const drop = i - half - 1;
    if (drop >= 0) windowSum -= prompt[drop] as number;
    const count = Math.min(n - 1, i + half) - Math.max(0, i - half) + 1;
    prefillReplicas[i] = windowSum / (count * stepSeconds) / input.prefillTokensPerSecondPerReplica;
    replicas[i] = Math.max(kvReplicas[i] as number, prefillReplicas[i] as number);
  }
  return { stepSeconds, kvReplicas, prefillReplicas, replicas };
}

/**
 * The oracle: at time t it runs the replicas the demand will need at any time up to one cold start
 * (plus `marginSeconds`) ahead, at `utilization` of each replica. Scale-up starts exactly early
 * enough; scale-down happens as soon as the capacity will not be needed before a new replica could
 * come back.
 */
export function oracleSchedule(
  demand: DemandSeries,
  utilization: number,
  lookaheadSeconds: number,
  minReplicas: number,
  maxReplicas: number,
): OracleSchedule {
  const n = demand.replicas.length;
  const span = Math.max(0, Math.ceil(lookaheadSeconds / demand.stepSeconds));
  // Sliding-window maximum of the demand over [i, i + span] (monotonic deque).
  const ahead = new Float64Array(n);
  const deque: number[] = [];
  let head = 0;
  for (let i = n - 1; i >= 0; i--) {
    while (
      deque.length > head &&
      (demand.replicas[deque[deque.length - 1] as number] as number) <= (demand.replicas[i] as number)
    ) {
      deque.pop();
    }
    deque.push(i);
    while ((deque[head] as number) > i + span) head++;
    ahead[i] = demand.replicas[deque[head] as number] as number;
  }
  return {
    desiredAt(seconds: number): number {
      const i = Math.min(n - 1, Math.max(0, Math.floor(seconds / demand.stepSeconds)));
      const need = Math.ceil((ahead[i] as number) / utilization - 1e-9);
      return Math.max(minReplicas, Math.min(maxReplicas, need));
    },
  };
}

/** Largest value of the series within [fromSeconds, toSeconds]. */
export function peakDemand(demand: DemandSeries, fromSeconds: number, toSeconds: number): number {
  const i0 = Math.max(0, Math.floor(fromSeconds / demand.stepSeconds));
  const i1 = Math.min(demand.replicas.length - 1, Math.ceil(toSeconds / demand.stepSeconds));
  let peak = 0;
  for (let i = i0; i <= i1; i++) peak = Math.max(peak, demand.replicas[i] as number);
  return peak;
}
