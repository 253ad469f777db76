import { describe, expect, it } from 'vitest';
import {
  type DecideInput,
  type DeciderState,
  type DecisionPolicy,
  decide,
  initialDeciderState,
} from './decide.ts';
import type { Decision } from './decision.ts';
import type { Observation } from './observation.ts';

const policy: DecisionPolicy = {
  minReplicas: 1,
  maxReplicas: 10,
  targetKvCacheUtilization: 0.8,
  prefillUtilization: 0.8,
  queueDrainSeconds: 10,
  queueToleranceTokens: 0,
  demandPercentile: 95,
  windowSeconds: 300,
  fallbackAfterSeconds: 120,
  scaleDownStabilizationSeconds: 0,
};

// 100,000 tokens per replica at 0.8 -> one replica per 80,000 tokens of demand.
const TOKENS_PER_REPLICA = 100_000;

const obs = (atSeconds: number, inflightTokens: number, extra: Partial<Observation> = {}): Observation => ({
  observedAtSeconds: atSeconds,
  podsReporting: 1,
  inflightTokens,
  provenance: { inflightTokens: 'measured' },
  ...extra,
});

interface Step {
  /** Seconds since the decider started. */
  at: number;
  /** In-flight tokens, or null when the tick has no data. */
  inflight: number | null;
  current: number;
  ready?: number;
  extra?: Partial<Observation>;
  want: number;
  bound: Decision['bindingConstraint'];
  note: string;
}

function run(steps: Step[], p: Partial<DecisionPolicy> = {}, start = 1_000): Decision[] {
  let state: DeciderState = initialDeciderState(start);
  const decisions: Decision[] = [];
  for (const step of steps) {
    const now = start + step.at;
    const input: DecideInput = {
      nowSeconds: now,
      observation: step.inflight === null ? undefined : obs(now, step.inflight, step.extra),
      currentReplicas: step.current,
      readyReplicas: step.ready ?? step.current,
      tokensPerReplica: TOKENS_PER_REPLICA,
      policy: { ...policy, ...p },
    };
    const { decision, nextState } = decide(input, state);
    expect({ note: step.note, desired: decision.desiredReplicas, bound: decision.bindingConstraint }).toEqual(
      {
        note: step.note,
        desired: step.want,
        bound: step.bound,
      },
    );
    state = nextState;
    decisions.push(decision);
  }
  return decisions;
}

describe('decide: demand over the window', () => {
  it('scales up at once on a burst and down only when the burst leaves the window', () => {
    run([
      { at: 0, inflight: 100_000, current: 2, want: 2, bound: 'kv-memory', note: '100k / 80k = 1.25 -> 2' },
      {
        at: 15,
        inflight: 500_000,
        current: 2,
        want: 7,
        bound: 'kv-memory',
        note: 'burst: 500k / 80k = 6.25 -> 7 at once',
      },
      {
        at: 30,
        inflight: 100_000,
        current: 7,
        want: 7,
        bound: 'kv-memory',
        note: 'burst still the P95 of the window',
      },
      {
        at: 310,
        inflight: 100_000,
        current: 7,
        want: 7,
        bound: 'kv-memory',
        note: 'burst at t=15 still inside 300 s',
      },
      {
        at: 316,
        inflight: 100_000,
        current: 7,
        want: 2,
        bound: 'kv-memory',
        note: 'burst scrolled out of the window',
      },
    ]);
  });

  it('clamps to min and max and says so', () => {
    const decisions = run(
      [
        { at: 0, inflight: 1_000, current: 2, want: 2, bound: 'min', note: '1 replica wanted, min 2' },
        { at: 15, inflight: 5_000_000, current: 2, want: 10, bound: 'max', note: '63 wanted, max 10' },
      ],
      { minReplicas: 2 },
    );
    expect(decisions[0]?.reason).toMatch(/below minReplicas 2/);
    expect(decisions[1]?.reason).toMatch(/capped at maxReplicas 10/);
  });

  it('reports the arithmetic in the reason', () => {
    const [d] = run([
      { at: 0, inflight: 170_000, current: 1, want: 3, bound: 'kv-memory', note: '170k / 80k = 2.13 -> 3' },
    ]);
    expect(d?.reason).toBe(
      'kv-memory: demand 170,000 tokens (P95 over 300s, now 170,000) / (100,000 tokens per replica x 0.8) = 2.13 -> 3',
    );
    expect(d?.demandTokens).toBe(170_000);
  });
});

describe('decide: prefill and queue terms', () => {
  it('the prefill term binds when prompts arrive faster than replicas prefill', () => {
    const [d] = run(
      [
        {
          at: 0,
          inflight: 50_000,
          current: 1,
          extra: { promptTokensPerSecond: 90_000 },
          want: 3,
          bound: 'prefill',
          note: '90k/s / (40k x 0.8) = 2.81 -> 3',
        },
      ],
      { prefillTokensPerSecondPerReplica: 40_000 },
    );
    expect(d?.terms).toEqual({ kvReplicas: 1, prefillReplicas: 3 });
  });

  it('the queue term adds replicas for waiting tokens, crediting replicas that are starting', () => {
    run([
      {
        at: 0,
        inflight: 150_000,
        current: 2,
        extra: { waitingTokens: 170_000 },
        want: 5,
        bound: 'queue',
        note: '2 ready + ceil(170k / 80k) = 5',
      },
      {
        at: 15,
        inflight: 150_000,
        current: 5,
        ready: 2,
        extra: { waitingTokens: 170_000 },
        want: 5,
        bound: 'queue',
        note: 'the 3 starting replicas absorb the backlog: no more',
      },
      {
        at: 30,
        inflight: 150_000,
        current: 5,
        ready: 5,
        extra: { waitingTokens: 0 },
        want: 5,
        bound: 'hold',
        note: 'no scale-down in the first window',
      },
    ]);
  });

  it('sizes a backlog by the rate the ready replicas prefill, and tolerates what drains in queueDrainSeconds', () => {
    const decisions = run([
      // 4 ready prefill 20,000/s: 10 s of that (200,000) is tolerated; 300,000 waiting leaves
      // 100,000 to drain in 10 s: 4 x (20,000 + 10,000) / 20,000 = 6.
      {
        at: 0,
        inflight: 200_000,
        current: 4,
        extra: { waitingTokens: 300_000, promptTokensPerSecond: 20_000 },
        want: 6,
        bound: 'queue',
        note: 'backlog beyond 10 s of prefill',
      },
      // A queue the fleet drains within 10 s is the normal state of continuous batching: no ratchet.
      {
        at: 15,
        inflight: 200_000,
        current: 6,
        ready: 6,
        extra: { waitingTokens: 150_000, promptTokensPerSecond: 30_000 },
        want: 6,
        bound: 'hold',
        note: 'small queue, no +1; held by the first window',
      },
    ]);
    expect(decisions[0]?.reason).toMatch(
      /100,000 beyond what 4 ready replicas prefill in 10s at 20,000\/s -> 6/,
    );
    expect(decisions[1]?.terms.queueReplicas).toBeUndefined();
  });

  it('the prefill term counts the backlog over queueDrainSeconds and keeps the window percentile', () => {
    const decisions = run(
      [
        // (60,000/s + 150,000 / 10 s) / (40,000 x 0.8) = 2.34 -> 3
        {
          at: 0,
          inflight: 10_000,
          current: 1,
          extra: { promptTokensPerSecond: 60_000, waitingTokens: 150_000 },
          want: 3,
          bound: 'prefill',
          note: 'arrivals plus backlog',
        },
        // the burst is over, but its prefill demand is still the P95 of the window
        {
          at: 15,
          inflight: 10_000,
          current: 3,
          extra: { promptTokensPerSecond: 5_000, waitingTokens: 0 },
          want: 3,
          bound: 'prefill',
          note: 'window keeps the burst',
        },
      ],
      { prefillTokensPerSecondPerReplica: 40_000 },
    );
    expect(decisions[1]?.terms.queueReplicas).toBeUndefined();
    expect(decisions[0]?.reason).toMatch(/arrivals 60,000\/s \+ 150,000 waiting over 10s/);
  });

  it('tolerates a small queue', () => {
    run(
      [
        {
          at: 0,
          inflight: 60_000,
          current: 1,
          extra: { waitingTokens: 4_000 },
          want: 1,
          bound: 'kv-memory',
          note: 'within tolerance',
        },
      ],
      {
        queueToleranceTokens: 5_000,
      },
    );
  });
});

describe('decide: missing data, fallback, restart', () => {
  it('holds the last decision, then falls back after fallback.afterSeconds, and recovers', () => {
    const decisions = run([
      { at: 0, inflight: 300_000, current: 4, want: 4, bound: 'kv-memory', note: '300k / 80k = 3.75 -> 4' },
      { at: 15, inflight: null, current: 4, want: 4, bound: 'hold', note: 'no data: hold 4, not 0' },
      { at: 119, inflight: null, current: 4, want: 4, bound: 'hold', note: '119 s without data < 120' },
      {
        at: 135,
        inflight: null,
        current: 4,
        want: 4,
        bound: 'fallback',
        note: '120 s without data: fallback keeps 4',
      },
      { at: 150, inflight: 400_000, current: 4, want: 5, bound: 'kv-memory', note: 'data is back' },
    ]);
    expect(decisions[1]?.metricsAvailable).toBe(false);
    expect(decisions[1]?.reason).toMatch(/no token metrics for 15s; keeping 4 replicas/);
    expect(decisions[3]?.fallbackActive).toBe(true);
    expect(decisions[4]?.fallbackActive).toBe(false);
  });

  it('applies fallback.replicas when set', () => {
    run(
      [
        { at: 0, inflight: 100_000, current: 2, want: 2, bound: 'kv-memory', note: 'start' },
        { at: 200, inflight: null, current: 2, want: 6, bound: 'fallback', note: 'fallback.replicas 6' },
      ],
      { fallbackReplicas: 6 },
    );
  });

  it('treats an observation without in-flight tokens, or a stale one, as no data', () => {
    let state = initialDeciderState(0);
    const input = (observation: Observation | undefined, now: number): DecideInput => ({
      nowSeconds: now,
      observation,
      currentReplicas: 3,
      readyReplicas: 3,
      tokensPerReplica: TOKENS_PER_REPLICA,
      policy,
    });
    const noTokens = { observedAtSeconds: 10, podsReporting: 2, runningRequests: 5, provenance: {} };
    let r = decide(input(noTokens, 10), state);
    expect(r.decision.bindingConstraint).toBe('hold');
    expect(r.decision.desiredReplicas).toBe(3);
    state = r.nextState;
    r = decide(input(obs(10, 900_000), 200), state);
    expect(r.decision.metricsAvailable).toBe(false);
  });

  it('never scales down during the first full window after a restart', () => {
    run([
      { at: 0, inflight: 10_000, current: 6, want: 6, bound: 'hold', note: 'restart: history too short' },
      { at: 290, inflight: 10_000, current: 6, want: 6, bound: 'hold', note: 'still inside the first 300 s' },
      {
        at: 300,
        inflight: 10_000,
        current: 6,
        want: 1,
        bound: 'kv-memory',
        note: 'a full window has passed',
      },
      { at: 315, inflight: 900_000, current: 1, want: 10, bound: 'max', note: 'scale-up was never blocked' },
    ]);
  });

  it('never holds above maxReplicas', () => {
    run(
      [
        {
          at: 0,
          inflight: 10_000,
          current: 6,
          want: 4,
          bound: 'max',
          note: 'first window hold capped by a lowered max',
        },
      ],
      { maxReplicas: 4 },
    );
  });

  it('stabilizes scale-down to the highest recommendation of the stabilization window', () => {
    run(
      [
        { at: 0, inflight: 400_000, current: 5, want: 5, bound: 'kv-memory', note: '5' },
        {
          at: 300,
          inflight: 150_000,
          current: 5,
          want: 5,
          bound: 'hold',
          note: 'demand says 2, but the 5 of t=0 is within 400 s',
        },
        {
          at: 399,
          inflight: 150_000,
          current: 5,
          want: 5,
          bound: 'hold',
          note: 'still within the stabilization window',
        },
        {
          at: 401,
          inflight: 150_000,
          current: 5,
          want: 2,
          bound: 'kv-memory',
          note: 'the 5 left the stabilization window',
        },
      ],
      { scaleDownStabilizationSeconds: 400, windowSeconds: 300 },
    );
  });
});

describe('decide: Fits guard', () => {
  it('raises Fits=false when the P95 request needs more tokens than a replica holds', () => {
    const [small, large] = run([
      {
        at: 0,
        inflight: 50_000,
        current: 1,
        extra: { requestInputTokens: { p95: 8_000 }, requestOutputTokens: { p95: 1_000 } },
        want: 1,
        bound: 'kv-memory',
        note: 'fits',
      },
      {
        at: 15,
        inflight: 50_000,
        current: 1,
        extra: { requestInputTokens: { p95: 120_000 }, requestOutputTokens: { p95: 4_000 } },
        want: 1,
        bound: 'kv-memory',
        note: 'P95 request of 124k > 100k',
      },
    ]);
    expect(small?.fits).toBe(true);
    expect(small?.requestTokensP95).toBe(9_000);
    expect(large?.fits).toBe(false);
  });

  it('leaves Fits unknown when request percentiles are not measured', () => {
    const [d] = run([
      { at: 0, inflight: 50_000, current: 1, want: 1, bound: 'kv-memory', note: 'no percentiles' },
    ]);
    expect(d?.fits).toBeUndefined();
  });
});
