/** Decisions and stores for the api/ tests (unit and integration). */
import { InMemoryDecisionStore } from '../src/api/decision-store.ts';
import type { Decision } from '../src/core/decision.ts';

/** 2026-08-21T10:00:00Z */
export const DECIDED_AT_SECONDS = 1_787_306_400;

export function decision(overrides: Partial<Decision> = {}): Decision {
  return {
    decidedAtSeconds: DECIDED_AT_SECONDS,
    desiredReplicas: 3,
    bindingConstraint: 'kv-memory',
    reason: 'kv-memory: 250000 demand tokens / (120000 tokens per replica x 0.8) = 2.6 -> 3 replicas',
    demandTokens: 250_000,
    inflightTokens: 200_000,
    waitingTokens: 1_000,
    tokensPerReplica: 120_000,
    requestTokensP95: 9_000,
    fits: true,
    metricsAvailable: true,
    fallbackActive: false,
    terms: { kvReplicas: 3 },
    ...overrides,
  };
}

/** inference/llama-70b (3 replicas), inference/llama-8b (5), inference/new (no decision yet), other/mixtral (2). */
export function sampleStore(): InMemoryDecisionStore {
  const store = new InMemoryDecisionStore();
  store.publish('inference', 'llama-70b', decision(), { demandWindowSeconds: 300 });
  store.publish(
    'inference',
    'llama-8b',
    decision({
      desiredReplicas: 5,
      demandTokens: 1.1 * 3,
      inflightTokens: undefined,
      tokensPerReplica: 500_000,
    }),
  );
  store.register('inference', 'new');
  store.publish('other', 'mixtral', decision({ desiredReplicas: 2 }));
  return store;
}
