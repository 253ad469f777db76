/**
 * @module Kubernetes Events about TokenScalers (events.k8s.io/v1, what `kubectl describe tks` and
 * `kubectl events` show), written by the leader only.
 *
 * `ScalerEvents` turns each tick's state into events on transitions, never on steady state:
 * Scaled (desired replicas changed), MetricsLost / MetricsRecovered, FallbackEngaged, DoesNotFit,
 * InvalidSpec, and ReplicasContested from the fight detector. After a failover the new leader takes
 * the stored status as the previous state, so it neither repeats nor misses a transition.
 *
 * `EventRecorder` aggregates repeats the way client-go's event correlator does: the same
 * (object, reason, note) within `seriesWindowSeconds` bumps the first Event's `series.count`
 * (patched at most once per `seriesPatchSeconds`) instead of creating a new object.
 */
import type { DecisionListener, Logger, ScalerDefinition } from '../reconcile/ports.ts';
import type { ScalerState } from '../reconcile/scaler-state.ts';
import type { EventRecord, KubeApi, KubeObject } from './kube-api.ts';
import { TOKENSCALER_API_VERSION, TOKENSCALER_KIND } from './kube-api.ts';
import type { LeaderState } from './leader-election.ts';
import { parseStoredStatus, type TokenScalerStatus } from './scaler-status.ts';

export const EVENT_REASONS = [
  'Scaled',
  'MetricsLost',
  'MetricsRecovered',
  'FallbackEngaged',
  'DoesNotFit',
  'InvalidSpec',
  'ReplicasContested',
  'HPACreated',
  'HPAUpdated',
  'HPADeleted',
  'HPAConflict',
] as const;
export type EventReason = (typeof EVENT_REASONS)[number];

export interface ScalerEventInput {
  scaler: Pick<ScalerDefinition, 'namespace' | 'name' | 'uid'>;
  type: 'Normal' | 'Warning';
  reason: EventReason;
  action: string;
  note: string;
}

export interface EventRecorderOptions {
  api: KubeApi;
  leader: LeaderState;
  nowMs: () => number;
  logger: Logger;
  reportingController?: string;
  seriesWindowSeconds?: number;
  seriesPatchSeconds?: number;
}

interface SeriesState {
  eventName: string;
  namespace: string;
  count: number;
  firstAtMs: number;
  lastAtMs: number;
  lastPatchedAtMs: number;
}

export class EventRecorder {
  readonly #options: EventRecorderOptions;
  readonly #series = new Map<string, SeriesState>();

  constructor(options: EventRecorderOptions) {
    this.#options = options;
  }

  /** Records one event (leader only); never throws: an event is worth less than the tick. */
  async record(input: ScalerEventInput, signal: AbortSignal): Promise<void> {
    const { api, leader, nowMs, logger } = this.#options;
    if (!leader.isLeader()) return;
    const now = nowMs();
    const note = input.note.slice(0, 1024);
    const k = `${input.scaler.namespace}/${input.scaler.name}|${input.reason}|${note}`;
    const windowMs = (this.#options.seriesWindowSeconds ?? 1800) * 1000;
    const existing = this.#series.get(k);
    try {
      if (existing !== undefined && now - existing.lastAtMs < windowMs) {
        existing.count += 1;
        existing.lastAtMs = now;
        if (now - existing.lastPatchedAtMs >= (this.#options.seriesPatchSeconds ?? 60) * 1000) {
          existing.lastPatchedAtMs = now;
          await api.patchEventSeries(
            existing.namespace,
            existing.eventName,
            { count: existing.count, lastObservedTimeMs: now },
            signal,
          );
        }
        return;
      }
      const event: EventRecord = {
        namespace: input.scaler.namespace,
        regarding: {
          apiVersion: TOKENSCALER_API_VERSION,
          kind: TOKENSCALER_KIND,
          name: input.scaler.name,
          namespace: input.scaler.namespace,
          ...(input.scaler.uid === undefined ? {} : { uid: input.scaler.uid }),
        },
        type: input.type,
        reason: input.reason,
        action: input.action,
        note,
        eventTimeMs: now,
        reportingController: this.#options.reportingController ?? 'tokenscaler.dev/controller',
        reportingInstance: leader.identity.slice(0, 128),
      };
      const { name } = await api.createEvent(event, signal);
      this.#series.set(k, {
        eventName: name,
        namespace: input.scaler.namespace,
        count: 1,
        firstAtMs: now,
        lastAtMs: now,
        lastPatchedAtMs: now,
      });
      this.#prune(now, windowMs);
    } catch (error) {
      logger.warn('recording an event failed', {
        scaler: `${input.scaler.namespace}/${input.scaler.name}`,
        reason: input.reason,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  #prune(now: number, windowMs: number): void {
    for (const [k, s] of this.#series) if (now - s.lastAtMs >= windowMs) this.#series.delete(k);
  }
}

interface Seen {
  desiredReplicas: number | undefined;
  metricsAvailable: boolean | undefined;
  fallbackActive: boolean | undefined;
  fits: boolean | undefined;
}

/** Emits events on transitions of each scaler's decision. */
export class ScalerEvents implements DecisionListener {
  readonly #recorder: EventRecorder;
  readonly #lookup: (namespace: string, name: string) => KubeObject | undefined;
  readonly #seen = new Map<string, Seen>();
  readonly #leader: LeaderState;

  constructor(
    recorder: EventRecorder,
    leader: LeaderState,
    lookup: (namespace: string, name: string) => KubeObject | undefined,
  ) {
    this.#recorder = recorder;
    this.#leader = leader;
    this.#lookup = lookup;
  }

  async onDecision(state: ScalerState, signal: AbortSignal): Promise<void> {
    const { scaler, decision } = state;
    if (decision === undefined) return;
    const k = `${scaler.namespace}/${scaler.name}`;
    const before =
      this.#seen.get(k) ??
      seenOfStatus(parseStoredStatus(this.#lookup(scaler.namespace, scaler.name)?.status));
    const now: Seen = {
      desiredReplicas: decision.desiredReplicas,
      metricsAvailable: decision.metricsAvailable,
      fallbackActive: decision.fallbackActive,
      fits: decision.fits,
    };
    // Followers track transitions too, so a new leader does not replay what it watched happen.
    this.#seen.set(k, now);
    if (!this.#leader.isLeader()) return;
    const emit = (type: 'Normal' | 'Warning', reason: EventReason, action: string, note: string) =>
      this.#recorder.record({ scaler, type, reason, action, note }, signal);

    if (before.desiredReplicas !== undefined && before.desiredReplicas !== now.desiredReplicas) {
      await emit(
        'Normal',
        'Scaled',
        'Scale',
        `desired replicas ${before.desiredReplicas} -> ${now.desiredReplicas}: ${decision.reason}`,
      );
    }
    if (before.metricsAvailable !== false && now.metricsAvailable === false) {
      const cause =
        state.lastError !== undefined
          ? `${state.lastError.code}: ${state.lastError.message}`
          : 'no token metrics';
      await emit(
        'Warning',
        'MetricsLost',
        'Observe',
        `${cause}; holding ${decision.desiredReplicas} replicas`,
      );
    }
    if (before.metricsAvailable === false && now.metricsAvailable === true) {
      await emit('Normal', 'MetricsRecovered', 'Observe', `token metrics are back; ${decision.reason}`);
    }
    if (before.fallbackActive !== true && now.fallbackActive === true) {
      await emit('Warning', 'FallbackEngaged', 'Fallback', decision.reason);
    }
    if (before.fits !== false && now.fits === false) {
      await emit(
        'Warning',
        'DoesNotFit',
        'Decide',
        decision.tokensPerReplica <= 0
          ? 'the model leaves no KV cache on the GPUs of one replica'
          : `the P95 request needs ${decision.requestTokensP95 ?? 'more'} tokens but one replica holds ${decision.tokensPerReplica}`,
      );
    }
  }

  onScalerRemoved(namespace: string, name: string): void {
    this.#seen.delete(`${namespace}/${name}`);
  }
}

function seenOfStatus(status: TokenScalerStatus | undefined): Seen {
  const condition = (type: string) => status?.conditions?.find((c) => c.type === type)?.status;
  const metrics = condition('MetricsAvailable');
  const fits = condition('Fits');
  return {
    desiredReplicas: status?.desiredReplicas,
    metricsAvailable: metrics === 'True' ? true : metrics === 'False' ? false : undefined,
    fallbackActive: status?.fallbackActive,
    fits: fits === 'True' ? true : fits === 'False' ? false : undefined,
  };
}
