import { setTimeout as sleep } from 'node:timers/promises';
import { capacityOfSpec } from '../capacity/from-spec.ts';
import { type DecideInput, decide, initialDeciderState, policyOfSpec } from '../core/decide.ts';
import type { Observation } from '../core/observation.ts';
import { TokenscalerError } from '../errors.ts';
import type {
  DecisionListener,
  Logger,
  ObservationSource,
  ObservationSourceFactory,
  ReplicaCounts,
  ReplicaReader,
  ScalerDefinition,
} from './ports.ts';
import { type ScalerState, scalerKey } from './scaler-state.ts';

/**
 * The level-triggered loop: on every tick, for every scaler, observe -> decide -> publish. Scalers are
 * independent: one that fails (unreachable metrics, a listener that throws) never delays or stops the
 * others, and each tick of a scaler has a deadline shorter than the tick.
 */
export interface ReconcilerOptions {
  sources: ObservationSourceFactory;
  replicas: ReplicaReader;
  listeners: readonly DecisionListener[];
  logger: Logger;
  nowMs: () => number;
  tickSeconds: number;
  /** Deadline of one scaler's tick; default 80% of the tick. */
  scalerDeadlineSeconds?: number;
}

interface Entry {
  state: ScalerState;
  source: ObservationSource;
}

export class Reconciler {
  readonly #options: ReconcilerOptions;
  readonly #entries = new Map<string, Entry>();
  #ticks = 0;
  #lastTickAtMs: number | undefined;

  constructor(options: ReconcilerOptions) {
    if (!(options.tickSeconds > 0))
      throw new TokenscalerError('INVALID_TICK', `tickSeconds must be > 0, got ${options.tickSeconds}`);
    this.#options = options;
  }

  /**
   * Replaces the set of scalers. A new scaler starts with a fresh decider; one whose spec changed
   * keeps its demand history and decider (a spec edit is not a restart) but gets a new source and
   * capacity; one that is gone is closed and its listeners told.
   */
  async setScalers(definitions: readonly ScalerDefinition[]): Promise<void> {
    const wanted = new Map(definitions.map((d) => [scalerKey(d.namespace, d.name), d]));
    for (const [key, entry] of this.#entries) {
      if (wanted.has(key)) continue;
      this.#entries.delete(key);
      await this.#closeSource(entry.source);
      for (const listener of this.#options.listeners) {
        try {
          await listener.onScalerRemoved?.(entry.state.scaler.namespace, entry.state.scaler.name);
        } catch (error) {
          this.#options.logger.warn('listener failed on scaler removal', {
            scaler: key,
            error: describe(error),
          });
        }
      }
    }
    const nowSeconds = this.#options.nowMs() / 1000;
    for (const [key, definition] of wanted) {
      const existing = this.#entries.get(key);
      if (existing !== undefined && existing.state.scaler.generation === definition.generation) continue;
      if (existing !== undefined) await this.#closeSource(existing.source);
      const state: ScalerState = {
        scaler: definition,
        deciderState: existing?.state.deciderState ?? initialDeciderState(nowSeconds),
        ...(existing?.state.decision !== undefined ? { decision: existing.state.decision } : {}),
        ...capacityFields(definition),
      };
      this.#entries.set(key, { state, source: this.#options.sources(definition) });
    }
  }

  get(namespace: string, name: string): ScalerState | undefined {
    return this.#entries.get(scalerKey(namespace, name))?.state;
  }

  list(): ScalerState[] {
    return [...this.#entries.values()].map((e) => e.state);
  }

  /** Ticks completed so far and when the last one ended (for readiness and health). */
  get progress(): { ticks: number; lastTickAtMs: number | undefined } {
    return { ticks: this.#ticks, lastTickAtMs: this.#lastTickAtMs };
  }

  /** One pass over every scaler, concurrently; resolves when all are done or past their deadline. */
  async tick(signal: AbortSignal = new AbortController().signal): Promise<void> {
    const entries = [...this.#entries.entries()];
    await Promise.allSettled(entries.map(([key, entry]) => this.#tickOne(key, entry, signal)));
    this.#ticks += 1;
    this.#lastTickAtMs = this.#options.nowMs();
  }

  /** Ticks every tickSeconds until the signal aborts, then closes every source. */
  async run(signal: AbortSignal, afterTick?: () => void): Promise<void> {
    while (!signal.aborted) {
      const started = this.#options.nowMs();
      await this.tick(signal);
      afterTick?.();
      const elapsedMs = this.#options.nowMs() - started;
      const waitMs = Math.max(0, this.#options.tickSeconds * 1000 - elapsedMs);
      try {
        await sleep(waitMs, undefined, { signal });
      } catch {
        break;
      }
    }
    await Promise.allSettled([...this.#entries.values()].map((e) => this.#closeSource(e.source)));
  }

  async #tickOne(key: string, entry: Entry, parentSignal: AbortSignal): Promise<void> {
    const { logger, nowMs } = this.#options;
    const deadlineSeconds = this.#options.scalerDeadlineSeconds ?? this.#options.tickSeconds * 0.8;
    const signal = AbortSignal.any([
      parentSignal,
      AbortSignal.timeout(Math.max(1, Math.round(deadlineSeconds * 1000))),
    ]);
    const startedMs = nowMs();
    const nowSeconds = startedMs / 1000;
    const { scaler } = entry.state;

    let observation: Observation | undefined;
    let lastError = entry.state.lastError;
    const [observed, counted] = await Promise.allSettled([
      entry.source.observe(nowSeconds, signal),
      this.#options.replicas.read(scaler, signal),
    ]);
    if (observed.status === 'fulfilled') {
      observation = observed.value;
      lastError = undefined;
    } else {
      lastError = { ...errorFields(observed.reason), atSeconds: nowSeconds };
      logger.warn('observation failed; holding the last decision', { scaler: key, ...lastError });
    }
    let replicas: ReplicaCounts | undefined;
    if (counted.status === 'fulfilled') {
      replicas = counted.value;
    } else {
      lastError = { ...errorFields(counted.reason), atSeconds: nowSeconds };
      logger.warn('reading the scale target failed', { scaler: key, ...lastError });
    }
    // Standalone (no scale target to read): the pods that report are the ready replicas, and the
    // fleet runs what was last decided.
    const inferred = replicas ?? inferReplicas(entry.state, observation, scaler.spec.minReplicas);

    const model = entry.state.capacity;
    const engineTokens = observation?.engineKvCapacityTokensPerReplica;
    const tokensPerReplica = engineTokens ?? model?.tokensPerReplica ?? 0;
    const input: DecideInput = {
      nowSeconds,
      observation,
      currentReplicas: inferred.current,
      readyReplicas: inferred.ready,
      tokensPerReplica,
      policy: policyOfSpec(scaler.spec),
    };
    const { decision, nextState } = decide(input, entry.state.deciderState);
    // The entry may have been replaced (spec change) or removed while this tick ran: publish only if not.
    if (this.#entries.get(key) !== entry) return;
    const state: ScalerState = {
      scaler,
      ...capacityFieldsOf(entry.state),
      tokensPerReplica,
      capacitySource: engineTokens !== undefined ? 'engine' : 'model',
      ...(engineTokens !== undefined && model !== undefined && model.tokensPerReplica > 0
        ? { capacityDriftRatio: engineTokens / model.tokensPerReplica - 1 }
        : {}),
      ...(observation !== undefined
        ? { observation }
        : entry.state.observation !== undefined
          ? { observation: entry.state.observation }
          : {}),
      replicas: inferred,
      decision,
      deciderState: nextState,
      ...(lastError !== undefined ? { lastError } : {}),
      lastTickDurationSeconds: (nowMs() - startedMs) / 1000,
    };
    entry.state = state;
    for (const listener of this.#options.listeners) {
      try {
        await listener.onDecision(state, signal);
      } catch (error) {
        logger.warn('decision listener failed', { scaler: key, error: describe(error) });
      }
    }
  }

  async #closeSource(source: ObservationSource): Promise<void> {
    try {
      await source.close?.();
    } catch (error) {
      this.#options.logger.warn('closing a metrics source failed', { error: describe(error) });
    }
  }
}

function capacityFields(definition: ScalerDefinition): Pick<ScalerState, 'capacity' | 'capacityError'> {
  try {
    return { capacity: capacityOfSpec(definition.spec) };
  } catch (error) {
    return { capacityError: describe(error) };
  }
}

function capacityFieldsOf(state: ScalerState): Pick<ScalerState, 'capacity' | 'capacityError'> {
  return {
    ...(state.capacity !== undefined ? { capacity: state.capacity } : {}),
    ...(state.capacityError !== undefined ? { capacityError: state.capacityError } : {}),
  };
}

function inferReplicas(
  state: ScalerState,
  observation: Observation | undefined,
  minReplicas: number,
): ReplicaCounts {
  const current = state.decision?.desiredReplicas ?? Math.max(minReplicas, observation?.podsReporting ?? 0);
  const ready = observation?.podsReporting ?? state.replicas?.ready ?? current;
  return { current, ready };
}

function errorFields(error: unknown): { code: string; message: string } {
  if (error instanceof TokenscalerError) return { code: error.code, message: error.message };
  if (error instanceof Error && error.name === 'TimeoutError')
    return { code: 'DEADLINE_EXCEEDED', message: error.message };
  return { code: 'INTERNAL', message: describe(error) };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
