import type { InMemoryDecisionStore } from '../api/decision-store.ts';
import type { DecisionListener } from './ports.ts';
import type { ScalerState } from './scaler-state.ts';

/** Publishes every decision to the store the metrics APIs read from; drops removed scalers (404 from then on). */
export class StorePublisher implements DecisionListener {
  readonly #store: InMemoryDecisionStore;

  constructor(store: InMemoryDecisionStore) {
    this.#store = store;
  }

  onDecision(state: ScalerState): void {
    if (state.decision === undefined) return;
    const { namespace, name, spec } = state.scaler;
    this.#store.publish(namespace, name, state.decision, { demandWindowSeconds: spec.demand.windowSeconds });
  }

  onScalerRemoved(namespace: string, name: string): void {
    this.#store.remove(namespace, name);
  }
}
