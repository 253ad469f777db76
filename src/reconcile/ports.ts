import type { ScalerDefinition } from '../config/tokenscaler-spec.ts';
import type { Observation } from '../core/observation.ts';
import type { ScalerState } from './scaler-state.ts';

export type { ScalerDefinition };

/**
 * The narrow interfaces the reconcile loop owns. Real adapters (sources/, kube/, api/, telemetry/) are
 * built in src/main.ts and passed in; tests pass in-memory fakes.
 */

/** Collects one observation for a scaler. Rejects with a coded error when it cannot; never returns zeros for missing data. */
export interface ObservationSource {
  observe(nowSeconds: number, signal: AbortSignal): Promise<Observation>;
  close?(): Promise<void> | void;
}

export type ObservationSourceFactory = (scaler: ScalerDefinition) => ObservationSource;

export interface ReplicaCounts {
  /** Replicas the target asks for (spec.replicas of its /scale subresource), ready or starting. */
  current: number;
  ready: number;
}

/**
 * Reads how many replicas the scale target runs. In a cluster: the /scale subresource and ready pods.
 * Standalone: undefined, and the loop infers replicas from the pods that report metrics.
 */
export interface ReplicaReader {
  read(scaler: ScalerDefinition, signal: AbortSignal): Promise<ReplicaCounts | undefined>;
}

/** Told about every new decision (status writer, events, telemetry). A failing listener never stops the loop. */
export interface DecisionListener {
  onDecision(state: ScalerState, signal: AbortSignal): Promise<void> | void;
  onScalerRemoved?(namespace: string, name: string): Promise<void> | void;
}

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}
