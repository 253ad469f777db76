import type { BindingConstraint, TokenScalerSpec } from '../config/tokenscaler-spec.ts';
import type { Decision } from './decision.ts';
import type { Observation } from './observation.ts';
import { nearestRankPercentile } from './percentile.ts';

/**
 * The decision (DESIGN.md "Decision"): from token demand and KV capacity to a replica count, with the
 * constraint that bound it and a reason a person can read. Pure: time comes in as `nowSeconds`, state
 * comes in and the next state goes out, nothing is read or written elsewhere.
 */

export interface DecisionPolicy {
  minReplicas: number;
  maxReplicas: number;
  /** Share of a replica's KV capacity to run at (0..1]. */
  targetKvCacheUtilization: number;
  prefillTokensPerSecondPerReplica?: number;
  prefillUtilization: number;
  queueDrainSeconds: number;
  queueToleranceTokens: number;
  demandPercentile: number;
  windowSeconds: number;
  fallbackAfterSeconds: number;
  fallbackReplicas?: number;
  scaleDownStabilizationSeconds: number;
}

export function policyOfSpec(spec: TokenScalerSpec): DecisionPolicy {
  return {
    minReplicas: spec.minReplicas,
    maxReplicas: spec.maxReplicas,
    targetKvCacheUtilization: spec.target.kvCacheUtilization,
    ...(spec.target.prefillTokensPerSecondPerReplica !== undefined
      ? { prefillTokensPerSecondPerReplica: spec.target.prefillTokensPerSecondPerReplica }
      : {}),
    prefillUtilization: spec.target.prefillUtilization,
    queueDrainSeconds: spec.target.queueDrainSeconds,
    queueToleranceTokens: spec.target.queueToleranceTokens,
    demandPercentile: spec.demand.percentile,
    windowSeconds: spec.demand.windowSeconds,
    fallbackAfterSeconds: spec.fallback.afterSeconds,
    ...(spec.fallback.replicas !== undefined ? { fallbackReplicas: spec.fallback.replicas } : {}),
    scaleDownStabilizationSeconds: spec.behavior.scaleDownStabilizationSeconds,
  };
}

export interface DecideInput {
  nowSeconds: number;
  /** This tick's observation; undefined when collection failed (no data is not zero demand). */
  observation: Observation | undefined;
  /** Replicas the target has asked for (spec.replicas of its /scale), ready or starting. */
  currentReplicas: number;
  readyReplicas: number;
  /** KV tokens one replica holds (engine-reported when known, else the capacity model). */
  tokensPerReplica: number;
  policy: DecisionPolicy;
}

export interface TimedValue {
  atSeconds: number;
  value: number;
}

export interface DeciderState {
  /** When this decider started (controller start or scaler creation); no scale-down for one window after. */
  startedAtSeconds: number;
  demandSamples: readonly TimedValue[];
  /** Prompt tokens per second to prefill (arrivals plus the backlog over queueDrainSeconds), per tick. */
  prefillSamples: readonly TimedValue[];
  recommendations: readonly TimedValue[];
  lastDataAtSeconds?: number;
  lastDecision?: Decision;
}

export function initialDeciderState(nowSeconds: number): DeciderState {
  return { startedAtSeconds: nowSeconds, demandSamples: [], prefillSamples: [], recommendations: [] };
}

export interface DecideResult {
  decision: Decision;
  nextState: DeciderState;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export function decide(input: DecideInput, state: DeciderState): DecideResult {
  const { nowSeconds: now, observation, policy } = input;
  const clamp = (n: number) => Math.min(policy.maxReplicas, Math.max(policy.minReplicas, n));
  const fresh =
    observation !== undefined &&
    observation.inflightTokens !== undefined &&
    now - observation.observedAtSeconds <= policy.fallbackAfterSeconds;

  if (!fresh) return decideWithoutData(input, state, clamp);
  const obs = observation as Observation;
  const currentDemand = obs.inflightTokens as number;

  const windowStart = now - policy.windowSeconds;
  const demandSamples = [
    ...state.demandSamples.filter((s) => s.atSeconds > windowStart),
    { atSeconds: now, value: currentDemand },
  ];
  const windowed = nearestRankPercentile(
    demandSamples.map((s) => s.value),
    policy.demandPercentile,
  ) as number;
  // Bursts scale up at once: the demand is never below what is in flight now.
  const demandTokens = Math.max(windowed, currentDemand);
  const requestTokensP95 =
    obs.requestInputTokens?.p95 !== undefined && obs.requestOutputTokens?.p95 !== undefined
      ? obs.requestInputTokens.p95 + obs.requestOutputTokens.p95
      : undefined;
  const fits =
    input.tokensPerReplica <= 0
      ? false
      : requestTokensP95 === undefined
        ? undefined
        : requestTokensP95 <= input.tokensPerReplica;

  const base = {
    decidedAtSeconds: now,
    demandTokens,
    inflightTokens: currentDemand,
    ...(obs.waitingTokens !== undefined ? { waitingTokens: obs.waitingTokens } : {}),
    tokensPerReplica: input.tokensPerReplica,
    ...(requestTokensP95 !== undefined ? { requestTokensP95 } : {}),
    ...(fits !== undefined ? { fits } : {}),
    metricsAvailable: true,
    fallbackActive: false,
  };

  if (input.tokensPerReplica <= 0) {
    const desired = clamp(input.currentReplicas);
    const decision: Decision = {
      ...base,
      desiredReplicas: desired,
      bindingConstraint: 'hold',
      reason: `holding ${desired} replicas: the capacity model gives no KV tokens per replica (the model does not fit the GPUs)`,
      terms: {},
    };
    return {
      decision,
      nextState: { ...state, demandSamples, lastDataAtSeconds: now, lastDecision: decision },
    };
  }

  // KV memory: replicas whose KV at the target utilization holds the demand.
  // Example: 812,400 tokens / (477,456 x 0.8 = 381,965) = 2.13 -> 3 replicas.
  const tokensPerReplicaAtTarget = input.tokensPerReplica * policy.targetKvCacheUtilization;
  const kvReplicas = Math.ceil(demandTokens / tokensPerReplicaAtTarget);
  const terms: Decision['terms'] = { kvReplicas };
  const reasons: Record<'kv-memory' | 'prefill' | 'queue', string> = {
    'kv-memory': `demand ${fmt(demandTokens)} tokens (P${policy.demandPercentile} over ${policy.windowSeconds}s, now ${fmt(currentDemand)}) / (${fmt(input.tokensPerReplica)} tokens per replica x ${policy.targetKvCacheUtilization}) = ${(demandTokens / tokensPerReplicaAtTarget).toFixed(2)} -> ${kvReplicas}`,
    prefill: '',
    queue: '',
  };

  // Prefill compute: KV memory alone misses a flood of long prompts that saturates prefill. The
  // demand is the arrival rate plus the backlog spread over queueDrainSeconds, as a windowed
  // percentile like the KV demand (a burst shorter than the rate window is not averaged away).
  // Example: (60,000 prompt tokens/s + 150,000 waiting / 10 s) / (40,000 x 0.6) = 3.13 -> 4 replicas.
  const waiting = obs.waitingTokens ?? 0;
  let prefillSamples = state.prefillSamples;
  if (obs.promptTokensPerSecond !== undefined) {
    const prefillNow = obs.promptTokensPerSecond + waiting / policy.queueDrainSeconds;
    prefillSamples = [
      ...state.prefillSamples.filter((s) => s.atSeconds > windowStart),
      { atSeconds: now, value: prefillNow },
    ];
    if (policy.prefillTokensPerSecondPerReplica !== undefined) {
      const prefillDemand = Math.max(
        prefillNow,
        nearestRankPercentile(
          prefillSamples.map((s) => s.value),
          policy.demandPercentile,
        ) as number,
      );
      const perReplica = policy.prefillTokensPerSecondPerReplica * policy.prefillUtilization;
      terms.prefillReplicas = Math.ceil(prefillDemand / perReplica);
      reasons.prefill = `prompt tokens ${fmt(prefillDemand)}/s (arrivals ${fmt(obs.promptTokensPerSecond)}/s + ${fmt(waiting)} waiting over ${policy.queueDrainSeconds}s, P${policy.demandPercentile} over ${policy.windowSeconds}s) / (${fmt(policy.prefillTokensPerSecondPerReplica)}/s per replica x ${policy.prefillUtilization}) -> ${terms.prefillReplicas}`;
    }
  }

  // Queue, when the per-replica prefill rate is not configured: a backlog the ready replicas would
  // not drain within queueDrainSeconds at the rate they prefill now. A small queue is normal under
  // continuous batching (every arrival waits for the step in progress) and adds nothing; beyond
  // that the fleet grows in proportion. Replicas that are starting already count in
  // currentReplicas, so a backlog they will absorb adds no more (credit for starting replicas).
  // Example: 4 ready prefilling 20,000 tokens/s, 300,000 waiting: tolerated 10 s x 20,000 = 200,000;
  // 4 x (20,000 + 100,000 / 10) / 20,000 = 6 replicas.
  const tolerated =
    policy.queueToleranceTokens + policy.queueDrainSeconds * Math.max(0, obs.promptTokensPerSecond ?? 0);
  if (policy.prefillTokensPerSecondPerReplica === undefined && waiting > tolerated) {
    const excess = waiting - tolerated;
    const rate = obs.promptTokensPerSecond ?? 0;
    const ready = Math.max(1, input.readyReplicas);
    if (rate > 0) {
      terms.queueReplicas = Math.ceil((ready * (rate + excess / policy.queueDrainSeconds)) / rate);
      reasons.queue = `${fmt(waiting)} tokens wait for prefill, ${fmt(excess)} beyond what ${ready} ready replicas prefill in ${policy.queueDrainSeconds}s at ${fmt(rate)}/s -> ${terms.queueReplicas}`;
    } else {
      // Nothing is being prefilled (or the rate is unknown): size the backlog by KV capacity.
      terms.queueReplicas = ready + Math.ceil(excess / tokensPerReplicaAtTarget);
      reasons.queue = `${fmt(waiting)} tokens wait for prefill and none are prefilled: ${ready} ready + ${terms.queueReplicas - ready} -> ${terms.queueReplicas}`;
    }
  }

  let binding: BindingConstraint = 'kv-memory';
  let raw = kvReplicas;
  if (terms.prefillReplicas !== undefined && terms.prefillReplicas > raw) {
    binding = 'prefill';
    raw = terms.prefillReplicas;
  }
  if (terms.queueReplicas !== undefined && terms.queueReplicas > raw) {
    binding = 'queue';
    raw = terms.queueReplicas;
  }
  let reason = `${binding}: ${reasons[binding]}`;
  let desired = clamp(raw);
  if (desired > raw) {
    binding = 'min';
    reason = `min: ${reason} is below minReplicas ${policy.minReplicas}`;
  } else if (desired < raw) {
    binding = 'max';
    reason = `max: ${reason} is capped at maxReplicas ${policy.maxReplicas}`;
  }

  // Scale-down stabilization, as the HPA does it: take the highest recommendation of the window.
  const stabilizationStart = now - policy.scaleDownStabilizationSeconds;
  const recommendations = [
    ...state.recommendations.filter((r) => r.atSeconds > stabilizationStart),
    { atSeconds: now, value: desired },
  ];
  if (desired < input.currentReplicas) {
    const highest = Math.max(...recommendations.map((r) => r.value));
    const stabilized = Math.min(input.currentReplicas, highest);
    if (stabilized > desired) {
      reason = `hold: scale-down to ${desired} stabilized at ${stabilized}, the highest recommendation of the last ${policy.scaleDownStabilizationSeconds}s (${reason})`;
      desired = stabilized;
      binding = 'hold';
    }
  }
  // After a restart the window holds too little history to trust a lower number.
  const sinceStart = now - state.startedAtSeconds;
  if (desired < input.currentReplicas && sinceStart < policy.windowSeconds) {
    reason = `hold: no scale-down during the first full window after start (${Math.floor(sinceStart)}s of ${policy.windowSeconds}s); would go to ${desired} (${reason})`;
    desired = input.currentReplicas;
    binding = 'hold';
  }

  // Holds never override the user's bounds (maxReplicas may just have been lowered).
  if (desired > policy.maxReplicas) {
    reason = `max: maxReplicas ${policy.maxReplicas} overrides the hold (${reason})`;
    desired = policy.maxReplicas;
    binding = 'max';
  }

  const decision: Decision = { ...base, desiredReplicas: desired, bindingConstraint: binding, reason, terms };
  return {
    decision,
    nextState: {
      ...state,
      demandSamples,
      prefillSamples,
      recommendations,
      lastDataAtSeconds: now,
      lastDecision: decision,
    },
  };
}

function decideWithoutData(
  input: DecideInput,
  state: DeciderState,
  clamp: (n: number) => number,
): DecideResult {
  const { nowSeconds: now, policy } = input;
  const since = state.lastDataAtSeconds ?? state.startedAtSeconds;
  const missingSeconds = Math.max(0, now - since);
  const last = state.lastDecision;
  const held = clamp(last?.desiredReplicas ?? input.currentReplicas);
  const common = {
    decidedAtSeconds: now,
    tokensPerReplica: input.tokensPerReplica,
    metricsAvailable: false,
    terms: {},
    ...(last?.fits !== undefined ? { fits: last.fits } : {}),
  };
  let decision: Decision;
  if (missingSeconds < policy.fallbackAfterSeconds) {
    decision = {
      ...common,
      desiredReplicas: held,
      bindingConstraint: 'hold',
      reason: `hold: no token metrics for ${Math.floor(missingSeconds)}s; keeping ${held} replicas (fallback after ${policy.fallbackAfterSeconds}s)`,
      fallbackActive: false,
    };
  } else {
    // Never scale down blind: without a configured fallback, keep the larger of the last decision and what runs.
    const fallback = clamp(policy.fallbackReplicas ?? Math.max(held, input.currentReplicas));
    decision = {
      ...common,
      desiredReplicas: fallback,
      bindingConstraint: 'fallback',
      reason: `fallback: no token metrics for ${Math.floor(missingSeconds)}s (limit ${policy.fallbackAfterSeconds}s); running ${fallback} replicas${policy.fallbackReplicas !== undefined ? ' (fallback.replicas)' : ' (last decision, never scaling down without data)'}`,
      fallbackActive: true,
    };
  }
  return { decision, nextState: { ...state, lastDecision: decision } };
}
