import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type EngineLimits, Replica, SimRequest, type StepCost } from './replica.ts';

/** 10 ms per step plus 0.1 ms per token in the batch: easy arithmetic. */
const COST: StepCost = { stepSeconds: (batchTokens) => 0.01 + batchTokens * 0.0001 };

const LIMITS: EngineLimits = { blockSize: 16, totalBlocks: 1000, maxNumBatchedTokens: 8192, maxNumSeqs: 64 };

interface Driven {
  replica: Replica;
  steps: number;
  firstTokens: Map<number, number>;
  finishes: Map<number, number>;
  maxUsedBlocks: number;
}

/**
 * Runs one replica until it is idle, with every request enqueued at t = 0, checking after each
 * step that the implicit block accounting matches a recount from the requests' own state.
 */
function drive(requests: SimRequest[], limits: EngineLimits = LIMITS, cost: StepCost = COST): Driven {
  const firstTokens = new Map<number, number>();
  const finishes = new Map<number, number>();
  const replica = new Replica(0, 0, 0, limits, cost, {
    firstToken: (r, t) => firstTokens.set(r.id, t),
    finished: (r, t) => finishes.set(r.id, t),
  });
  replica.state = 'ready';
  for (const r of requests) replica.enqueue(r);
  let now = 0;
  let steps = 0;
  let maxUsedBlocks = 0;
  for (;;) {
    const seconds = replica.planStep();
    if (seconds < 0) break;
    maxUsedBlocks = Math.max(maxUsedBlocks, replica.usedBlocks);
    now += seconds;
    replica.completeStep(now);
    replica.compactOrder();
    steps++;
    expect(replica.usedBlocks).toBe(recountBlocks(replica, requests));
    if (steps > 1_000_000) throw new Error('runaway');
  }
  return { replica, steps, firstTokens, finishes, maxUsedBlocks };
}

function recountBlocks(replica: Replica, requests: SimRequest[]): number {
  const b = replica.limits.blockSize;
  let blocks = 0;
  for (const r of requests) {
    if (r.replica !== replica) continue;
    if (r.phase === 'decode') blocks += Math.ceil((r.contextAtJoin + (replica.stepCount - r.joinStep)) / b);
    else if (r.phase === 'prefill') blocks += Math.ceil(r.prefilled / b);
  }
  return blocks;
}

describe('Replica (continuous batching, vLLM V1 scheduler semantics)', () => {
  it('prefills, then decodes one token per step', () => {
    const request = new SimRequest(0, 0, 100, 5);
    const run = drive([request]);
    // Step 1: 100 prompt tokens -> 0.01 + 0.01 = 0.02 s, and the first token.
    expect(run.firstTokens.get(0)).toBeCloseTo(0.02, 9);
    // Then 4 decode steps of one token: 4 x 0.0101.
    expect(run.finishes.get(0)).toBeCloseTo(0.02 + 4 * 0.0101, 9);
    expect(run.steps).toBe(5);
    expect(run.replica.generationTokensTotal).toBe(5);
    expect(run.replica.promptTokensTotal).toBe(100);
    expect(run.replica.usedBlocks).toBe(0);
    expect(request.phase).toBe('done');
  });

  it('chunks a prompt longer than the token budget', () => {
    const run = drive([new SimRequest(0, 0, 20_000, 1)], { ...LIMITS, totalBlocks: 2000 });
    // 8,192 + 8,192 + 3,616: three steps, the last produces the only token.
    expect(run.steps).toBe(3);
    expect(run.firstTokens.get(0)).toBeCloseTo(3 * 0.01 + 20_000 * 0.0001, 9);
  });

  it('refuses a sequence larger than the whole cache instead of preempting itself forever', () => {
    expect(() => drive([new SimRequest(7, 0, 15_000, 1_001)])).toThrow(
      /request 7 \(15000 \+ 1001 tokens\) exceeds/,
    );
  });

  it('caps running sequences at maxNumSeqs', () => {
    const requests = [new SimRequest(0, 0, 10, 3), new SimRequest(1, 0, 10, 3), new SimRequest(2, 0, 10, 3)];
    const run = drive(requests, { ...LIMITS, maxNumSeqs: 2 });
    // The third request is admitted in the step after the first two finish.
    expect(run.firstTokens.get(2)).toBeGreaterThan(run.finishes.get(0) as number);
  });

  it('admits a request only while KV blocks are free', () => {
    // 10 blocks of 16 = 160 tokens; each request needs 100 + 10 = 110.
    const requests = [new SimRequest(0, 0, 100, 10), new SimRequest(1, 0, 100, 10)];
    const run = drive(requests, { ...LIMITS, totalBlocks: 10 });
    expect(run.firstTokens.get(1)).toBeGreaterThan(run.finishes.get(0) as number);
    expect(run.replica.preemptionsTotal).toBe(0);
    expect(run.maxUsedBlocks).toBeLessThanOrEqual(10);
  });

  it('preempts the newest sequence by recompute when decoding runs out of blocks', () => {
    // Both fit at admission (4 blocks each of 10) but not at completion (2 x 110 > 160 tokens).
    const requests = [new SimRequest(0, 0, 50, 60), new SimRequest(1, 0, 50, 60)];
    const run = drive(requests, { ...LIMITS, totalBlocks: 10 });
    expect(run.replica.preemptionsTotal).toBeGreaterThanOrEqual(1);
    expect(requests[1]?.preemptions).toBeGreaterThanOrEqual(1);
    expect(requests[0]?.preemptions).toBe(0);
    // Recompute regenerates nothing the user already has: exactly 120 output tokens.
    expect(run.replica.generationTokensTotal).toBe(120);
    expect(requests.every((r) => r.phase === 'done' && r.generated === r.outputTokens)).toBe(true);
    // The first token came before the preemption and is not produced again.
    expect(run.firstTokens.get(1)).toBeLessThan(run.finishes.get(0) as number);
    expect(run.replica.usedBlocks).toBe(0);
  });

  it('keeps its invariants on random workloads', () => {
    fc.assert(
      fc.property(
        fc.record({
          blockSize: fc.integer({ min: 1, max: 16 }),
          totalBlocks: fc.integer({ min: 8, max: 64 }),
          maxNumSeqs: fc.integer({ min: 1, max: 8 }),
          maxNumBatchedTokens: fc.integer({ min: 16, max: 512 }),
          requests: fc.array(
            fc.record({ input: fc.integer({ min: 1, max: 300 }), output: fc.integer({ min: 1, max: 200 }) }),
            { minLength: 1, maxLength: 16 },
          ),
        }),
        (w) => {
          const limits = {
            blockSize: w.blockSize,
            totalBlocks: w.totalBlocks,
            maxNumSeqs: w.maxNumSeqs,
            maxNumBatchedTokens: w.maxNumBatchedTokens,
          };
          const capacity = w.blockSize * w.totalBlocks;
          const requests = w.requests
            .filter((r) => r.input + r.output <= capacity)
            .map((r, i) => new SimRequest(i, 0, r.input, r.output));
          const run = drive(requests, limits);
          expect(run.maxUsedBlocks).toBeLessThanOrEqual(w.totalBlocks);
          expect(run.replica.usedBlocks).toBe(0);
          expect(run.replica.isEmpty).toBe(true);
          expect(run.replica.generationTokensTotal).toBe(requests.reduce((s, r) => s + r.outputTokens, 0));
          for (const r of requests) {
            expect(r.phase).toBe('done');
            expect(r.generated).toBe(r.outputTokens);
            expect(r.firstTokenSeconds).toBeLessThanOrEqual(r.finishedSeconds);
          }
        },
      ),
      { numRuns: 200, seed: 42 },
    );
  });

  it('gives back every request when aborted', () => {
    const requests = Array.from({ length: 5 }, (_, i) => new SimRequest(i, 0, 40, 50));
    const replica = new Replica(0, 0, 0, { ...LIMITS, maxNumSeqs: 2 }, COST, {
      firstToken: () => {},
      finished: () => {},
    });
    replica.state = 'ready';
    for (const r of requests) replica.enqueue(r);
    let now = 0;
    for (let i = 0; i < 3; i++) {
      now += replica.planStep();
      replica.completeStep(now);
    }
    expect(replica.runningCount).toBe(2);
    expect(replica.waitingCount).toBe(3);
    const aborted = replica.abortAll();
    expect(aborted.map((r) => r.id).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(aborted.find((r) => r.id === 0)?.generated).toBe(3);
    expect(replica.isEmpty).toBe(true);
    expect(replica.usedBlocks).toBe(0);
    expect(replica.loadTokens).toBe(0);
  });
});
