/**
 * @module The status of a TokenScaler (DESIGN.md field names) and how it is computed from the loop's
 * ScalerState. Pure: time comes in, nothing is read or written. The status writer patches what
 * `computeStatus` returns, once per tick, and only when `statusChanged` says something a reader
 * would notice changed.
 *
 * Conditions follow the Kubernetes convention (type, status True/False/Unknown, CamelCase reason,
 * message, lastTransitionTime that moves only when status flips, observedGeneration):
 * - Ready: the scaler is being decided for (capacity model valid, scale target readable).
 * - MetricsAvailable: token metrics arrived within the fallback window; False while holding or in
 *   fallback, with how long metrics have been missing.
 * - Fits: the P95 request fits in one replica's KV cache (DESIGN.md "Guard").
 * - ReplicasContested: another writer keeps changing the target's spec.replicas (two owners).
 */
import { z } from 'zod';
import { BINDING_CONSTRAINTS } from '../config/tokenscaler-spec.ts';
import type { ScalerState } from '../reconcile/scaler-state.ts';

export const CONDITION_TYPES = ['Ready', 'MetricsAvailable', 'Fits', 'ReplicasContested'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export const conditionSchema = z.strictObject({
  type: z.enum(CONDITION_TYPES),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z
    .string()
    .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
    .max(1024),
  message: z.string().max(32768),
  lastTransitionTime: z.iso.datetime(),
  observedGeneration: z.number().int().nonnegative().optional(),
});
export type Condition = z.infer<typeof conditionSchema>;

/** One change of desiredReplicas, newest first in status.recentDecisions. */
export const decisionRecordSchema = z.strictObject({
  time: z.iso.datetime(),
  fromReplicas: z.number().int().nonnegative().optional(),
  desiredReplicas: z.number().int().nonnegative(),
  bindingConstraint: z.enum(BINDING_CONSTRAINTS),
  reason: z.string().max(2048),
});
export type DecisionRecord = z.infer<typeof decisionRecordSchema>;

/** How many past changes of desiredReplicas the status keeps (AIBrix keeps 5 in scalingHistory). */
export const RECENT_DECISIONS = 5;

const count = z.number().int().nonnegative();

export const tokenScalerStatusSchema = z.strictObject({
  observedGeneration: z.number().int().nonnegative().optional(),
  desiredReplicas: count.optional(),
  currentReplicas: count.optional(),
  readyReplicas: count.optional(),
  /** Windowed percentile of in-flight token demand the decision used. */
  demandTokens: count.optional(),
  inflightTokens: count.optional(),
  waitingTokens: count.optional(),
  /** KV tokens one replica holds, as the decision used it. */
  tokensPerReplica: count.optional(),
  /** engine: reported by the engine (vLLM num_gpu_blocks x block_size...); model: the capacity model. */
  capacitySource: z.enum(['engine', 'model']).optional(),
  modelTokensPerReplica: count.optional(),
  engineTokensPerReplica: count.optional(),
  /** engine / model - 1, as a decimal string (e.g. "-0.042"): how far the model is from the engine. */
  capacityDrift: z
    .string()
    .regex(/^-?\d+(\.\d+)?$/)
    .optional(),
  /** Bytes one token occupies across the whole replica. */
  kvBytesPerToken: count.optional(),
  requestTokensP95: count.optional(),
  bindingConstraint: z.enum(BINDING_CONSTRAINTS).optional(),
  reason: z.string().max(2048).optional(),
  fallbackActive: z.boolean().optional(),
  /** Name of the HPA tokenscaler owns for this scaler (spec.hpa.create). */
  hpaName: z.string().optional(),
  lastScaleTime: z.iso.datetime().optional(),
  lastDecisionTime: z.iso.datetime().optional(),
  lastMetricsTime: z.iso.datetime().optional(),
  conditions: z.array(conditionSchema).max(8).optional(),
  recentDecisions: z.array(decisionRecordSchema).max(RECENT_DECISIONS).optional(),
});
export type TokenScalerStatus = z.infer<typeof tokenScalerStatusSchema>;

export interface StatusContext {
  nowMs: number;
  /** metadata.generation of the object being reported on. */
  generation: number | undefined;
  /** The status as stored now (from the watch cache or a read), to keep transition times and history. */
  previous: TokenScalerStatus | undefined;
  hpaName?: string | undefined;
  /** Set when another writer fights over spec.replicas (src/kube/replicas-fight.ts). */
  contested?: { message: string } | undefined;
  /** The scale target could not be read this tick. */
  targetError?: string | undefined;
}

export function computeStatus(state: ScalerState, context: StatusContext): TokenScalerStatus {
  const now = iso(context.nowMs);
  const previous = context.previous ?? {};
  const decision = state.decision;
  const generation = context.generation;
  const conditions: Condition[] = [];
  const condition = (type: ConditionType, status: Condition['status'], reason: string, message: string) => {
    const before = previous.conditions?.find((c) => c.type === type);
    conditions.push({
      type,
      status,
      reason,
      message,
      lastTransitionTime: before !== undefined && before.status === status ? before.lastTransitionTime : now,
      ...(generation === undefined ? {} : { observedGeneration: generation }),
    });
  };

  if (state.capacityError !== undefined) {
    condition('Ready', 'False', 'CapacityModelInvalid', state.capacityError);
  } else if (context.targetError !== undefined) {
    condition('Ready', 'False', 'TargetUnreadable', context.targetError);
  } else if (decision === undefined) {
    condition('Ready', 'Unknown', 'Pending', 'no decision yet');
  } else {
    condition(
      'Ready',
      'True',
      'Deciding',
      `deciding every tick; ${decision.desiredReplicas} replicas desired`,
    );
  }

  if (decision === undefined) {
    condition('MetricsAvailable', 'Unknown', 'Pending', 'no observation yet');
  } else if (decision.metricsAvailable) {
    condition('MetricsAvailable', 'True', 'MetricsFresh', 'token metrics arrived this tick');
  } else {
    const cause =
      state.lastError !== undefined ? ` (${state.lastError.code}: ${state.lastError.message})` : '';
    condition(
      'MetricsAvailable',
      'False',
      decision.fallbackActive ? 'FallbackActive' : 'MetricsMissing',
      `${decision.reason}${cause}`.slice(0, 4096),
    );
  }

  if (decision?.fits === true) {
    condition(
      'Fits',
      'True',
      'RequestFits',
      `P95 request ${decision.requestTokensP95} tokens fit in ${decision.tokensPerReplica} tokens per replica`,
    );
  } else if (decision?.fits === false) {
    condition(
      'Fits',
      'False',
      'RequestTooLarge',
      decision.tokensPerReplica <= 0
        ? 'the model leaves no KV cache on the GPUs: no request fits'
        : `P95 request needs ${decision.requestTokensP95 ?? 'more'} tokens but one replica holds ${decision.tokensPerReplica}`,
    );
  } else {
    condition('Fits', 'Unknown', 'RequestSizeUnknown', 'per-request token percentiles are not measured');
  }

  if (context.contested !== undefined) {
    condition('ReplicasContested', 'True', 'AnotherWriter', context.contested.message);
  } else if (previous.conditions?.some((c) => c.type === 'ReplicasContested')) {
    condition('ReplicasContested', 'False', 'SingleWriter', 'spec.replicas follows the HPA');
  }

  // History: a new entry when desiredReplicas changes (or for the first decision).
  let recentDecisions = previous.recentDecisions ?? [];
  let lastScaleTime = previous.lastScaleTime;
  if (decision !== undefined && decision.desiredReplicas !== previous.desiredReplicas) {
    const at = iso(decision.decidedAtSeconds * 1000);
    recentDecisions = [
      {
        time: at,
        ...(previous.desiredReplicas === undefined ? {} : { fromReplicas: previous.desiredReplicas }),
        desiredReplicas: decision.desiredReplicas,
        bindingConstraint: decision.bindingConstraint,
        reason: decision.reason.slice(0, 2048),
      },
      ...recentDecisions,
    ].slice(0, RECENT_DECISIONS);
    if (previous.desiredReplicas !== undefined) lastScaleTime = at;
  }

  const model = state.capacity;
  const engineTokens = state.observation?.engineKvCapacityTokensPerReplica;
  const status: TokenScalerStatus = {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    ...(decision === undefined
      ? {}
      : {
          desiredReplicas: decision.desiredReplicas,
          bindingConstraint: decision.bindingConstraint,
          reason: decision.reason.slice(0, 2048),
          fallbackActive: decision.fallbackActive,
          lastDecisionTime: iso(decision.decidedAtSeconds * 1000),
          ...tokens('demandTokens', decision.demandTokens),
          ...tokens('inflightTokens', decision.inflightTokens),
          ...tokens('waitingTokens', decision.waitingTokens),
          ...tokens('requestTokensP95', decision.requestTokensP95),
          ...tokens(
            'tokensPerReplica',
            decision.tokensPerReplica > 0 ? decision.tokensPerReplica : undefined,
          ),
        }),
    ...(state.replicas === undefined
      ? {}
      : { currentReplicas: state.replicas.current, readyReplicas: state.replicas.ready }),
    ...(state.capacitySource === undefined ? {} : { capacitySource: state.capacitySource }),
    ...tokens('modelTokensPerReplica', model?.tokensPerReplica),
    ...tokens('engineTokensPerReplica', engineTokens),
    ...(state.capacityDriftRatio === undefined ? {} : { capacityDrift: state.capacityDriftRatio.toFixed(3) }),
    ...tokens('kvBytesPerToken', model?.kvBytesPerToken),
    ...(context.hpaName === undefined ? {} : { hpaName: context.hpaName }),
    ...(lastScaleTime === undefined ? {} : { lastScaleTime }),
    ...(decision?.metricsAvailable && state.observation !== undefined
      ? { lastMetricsTime: iso(state.observation.observedAtSeconds * 1000) }
      : previous.lastMetricsTime === undefined
        ? {}
        : { lastMetricsTime: previous.lastMetricsTime }),
    conditions,
    ...(recentDecisions.length === 0 ? {} : { recentDecisions }),
  };
  return status;
}

/**
 * True when a reader would see a difference: every field except the per-tick timestamps
 * (lastDecisionTime, lastMetricsTime), which alone never justify a write.
 */
export function statusChanged(before: TokenScalerStatus | undefined, after: TokenScalerStatus): boolean {
  if (before === undefined) return true;
  const strip = ({ lastDecisionTime: _d, lastMetricsTime: _m, ...rest }: TokenScalerStatus) => rest;
  return stableJson(strip(before)) !== stableJson(strip(after));
}

/** The merge patch that turns `before` into `after`: changed fields, and null for fields that went away. */
export function statusPatch(
  before: TokenScalerStatus | undefined,
  after: TokenScalerStatus,
): Record<string, unknown> {
  const patch: Record<string, unknown> = { ...after };
  for (const key of Object.keys(before ?? {})) if (!(key in after)) patch[key] = null;
  return patch;
}

/** Reads a stored status leniently: a field that does not parse is dropped, not the whole status. */
export function parseStoredStatus(raw: unknown): TokenScalerStatus | undefined {
  if (raw === null || typeof raw !== 'object') return undefined;
  const whole = tokenScalerStatusSchema.safeParse(raw);
  if (whole.success) return whole.data;
  const kept: Record<string, unknown> = {};
  const shape = tokenScalerStatusSchema.shape as Record<string, z.ZodType>;
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const field = shape[key];
    if (field?.safeParse(value).success) kept[key] = value;
  }
  return tokenScalerStatusSchema.parse(kept);
}

function tokens<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  if (value === undefined || !Number.isFinite(value) || value < 0) return {};
  return { [key]: Math.round(value) } as Partial<Record<K, number>>;
}

/** RFC 3339 at second precision, as the API server stores metav1.Time. */
export function iso(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
