import type { BindingConstraint } from '../config/tokenscaler-spec.ts';

/** What core/decide returns for one scaler on one tick; the api/, kube/ and telemetry/ layers publish it. */
export interface Decision {
  /** Unix seconds when the decision was made (the `now` it was given). */
  decidedAtSeconds: number;
  desiredReplicas: number;
  bindingConstraint: BindingConstraint;
  /** One sentence a person can read: which term bound and with what figures. */
  reason: string;
  /** Windowed percentile of in-flight token demand (never below the current demand). */
  demandTokens?: number;
  inflightTokens?: number;
  waitingTokens?: number;
  tokensPerReplica: number;
  /** P95 tokens of one request (input P95 + output P95), for the Fits guard. */
  requestTokensP95?: number;
  /** False when the P95 request needs more tokens than one replica holds; undefined when unknown. */
  fits?: boolean;
  metricsAvailable: boolean;
  fallbackActive: boolean;
  /** The replica terms before clamping; a term is absent when its inputs are. */
  terms: { kvReplicas?: number; prefillReplicas?: number; queueReplicas?: number };
}
