import type { KvCapacity } from '../capacity/kv-model.ts';
import type { DeciderState } from '../core/decide.ts';
import type { Decision } from '../core/decision.ts';
import type { Observation } from '../core/observation.ts';
import type { ReplicaCounts, ScalerDefinition } from './ports.ts';

/** Everything the loop knows about one scaler after its latest tick; what api/, kube/ and telemetry/ publish. */
export interface ScalerState {
  scaler: ScalerDefinition;
  /** The capacity model for the spec; undefined when the spec's model cannot be evaluated (see capacityError). */
  capacity?: KvCapacity;
  capacityError?: string;
  /** Tokens per replica the decision used: engine-reported when an engine reports it, else the model's. */
  tokensPerReplica?: number;
  capacitySource?: 'engine' | 'model';
  /** engine / model - 1 when both are known: how far the model is from what the engine allocated. */
  capacityDriftRatio?: number;
  observation?: Observation;
  replicas?: ReplicaCounts;
  decision?: Decision;
  deciderState: DeciderState;
  /** The last collection or decision failure, kept until a tick succeeds. */
  lastError?: { code: string; message: string; atSeconds: number };
  /** Seconds the last tick of this scaler took (observe + decide). */
  lastTickDurationSeconds?: number;
}

/** The key under which a scaler is stored: namespace/name. */
export const scalerKey = (namespace: string, name: string) => `${namespace}/${name}`;
