import { MinHeap } from './heap.ts';

/**
 * One inference replica (one engine over a TP x PP group of GPUs), as vLLM's V1 scheduler runs it:
 * continuous batching under a token budget per step (`maxNumBatchedTokens`) and a sequence cap
 * (`maxNumSeqs`), chunked prefill, paged KV blocks of `blockSize` tokens, admission only while
 * blocks are free, and preemption by recompute when a running sequence needs a block and none is
 * free (the most recently admitted sequence is evicted, its blocks freed, and it goes back to the
 * front of the queue to prefill its prompt and everything it generated so far again).
 *
 * Speed: decoding sequences are kept implicitly. A sequence that joined the decode set after step j
 * with c cached tokens holds c + (s - j) tokens after step s, so nothing per sequence changes per
 * step. It needs a new block before step s + 1 exactly when c + (s - j) is a multiple of the block
 * size, i.e. when s = j - c (mod blockSize): the replica keeps one counter per residue class, so the
 * blocks a decode step allocates are one array read. Completions come off a heap keyed by the step
 * at which each sequence reaches its output length. A step costs O(prefilling sequences + finishes).
 */

export type RequestPhase = 'pending' | 'waiting' | 'prefill' | 'decode' | 'done' | 'failed';

export class SimRequest {
  readonly id: number;
  readonly arrivalSeconds: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  phase: RequestPhase = 'pending';
  replica: Replica | undefined;
  /** Tokens to compute before the next output token: the prompt, or prompt + output after a preemption. */
  prefillTarget: number;
  prefilled = 0;
  /** Tokens of this step's prefill chunk. */
  chunk = 0;
  generated = 0;
  firstTokenSeconds = Number.NaN;
  finishedSeconds = Number.NaN;
  preemptions = 0;
  // Implicit decode state (see the module comment).
  joinStep = 0;
  contextAtJoin = 0;
  generatedAtJoin = 0;
  residue = 0;
  /** Bumped when the request leaves the decode set, so stale heap entries are skipped. */
  epoch = 0;
  /** Index in the fleet's in-flight list (swap-remove), -1 when not in flight. */
  inflightIndex = -1;

  constructor(id: number, arrivalSeconds: number, inputTokens: number, outputTokens: number) {
    this.id = id;
    this.arrivalSeconds = arrivalSeconds;
    this.inputTokens = inputTokens;
    this.outputTokens = outputTokens;
    this.prefillTarget = inputTokens;
  }
}

/** Seconds of one engine step (roofline.ts StepTimeModel; tests pass simpler costs). */
export interface StepCost {
  /**
   * @param batchTokens tokens computed this step (decode tokens + prefill chunk tokens)
   * @param attentionPairs (query, cached token) pairs the attention computes
   * @param kvReadTokens cached tokens the attention reads, summed over the batch
   */
  stepSeconds(batchTokens: number, attentionPairs: number, kvReadTokens: number): number;
}

export interface EngineLimits {
  blockSize: number;
  /** KV blocks of the replica: floor(tokensPerReplica / blockSize). */
  totalBlocks: number;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
}

/** What a replica reports back to the fleet while it steps. */
export interface ReplicaListener {
  firstToken(request: SimRequest, nowSeconds: number): void;
  finished(request: SimRequest, nowSeconds: number): void;
}

export type ReplicaState = 'starting' | 'ready' | 'draining' | 'gone';

interface FinishEntry {
  request: SimRequest;
  epoch: number;
}

export class Replica {
  readonly id: number;
  readonly name: string;
  readonly createdSeconds: number;
  readyAtSeconds: number;
  goneSeconds = Number.NaN;
  state: ReplicaState = 'starting';
  drainDeadlineSeconds = Number.NaN;

  readonly limits: EngineLimits;
  private readonly model: StepCost;
  private readonly listener: ReplicaListener;

  usedBlocks = 0;
  stepCount = 0;
  busy = false;
  /** Bumped when the replica is removed, so its pending step event is ignored. */
  generation = 0;

  // Waiting queue: preempted requests at the front (a stack, most recent first), then FCFS arrivals.
  private readonly front: SimRequest[] = [];
  private readonly queue: SimRequest[] = [];
  private queueHead = 0;
  /** Sum of prefillTarget over the waiting queue (tokens that still need a prefill). */
  waitingTokens = 0;

  private prefilling: SimRequest[] = [];
  decodeCount = 0;
  /** Cached tokens of the decode set after the last completed step. */
  decodeContextSum = 0;
  private readonly residues: Int32Array;
  private readonly finishes = new MinHeap<FinishEntry>();
  /** Running requests in admission order, for choosing preemption victims (lazily compacted). */
  private order: SimRequest[] = [];
  private orderDead = 0;

  // Counters a /metrics endpoint would expose.
  preemptionsTotal = 0;
  promptTokensTotal = 0;
  generationTokensTotal = 0;

  // The step in flight.
  private stepDecodeCount = 0;

  constructor(
    id: number,
    createdSeconds: number,
    readyAtSeconds: number,
    limits: EngineLimits,
    model: StepCost,
    listener: ReplicaListener,
  ) {
    this.id = id;
    this.name = `replica-${id}`;
    this.createdSeconds = createdSeconds;
    this.readyAtSeconds = readyAtSeconds;
    this.limits = limits;
    this.model = model;
    this.listener = listener;
    this.residues = new Int32Array(limits.blockSize);
  }

  get runningCount(): number {
    return this.decodeCount + this.prefilling.length;
  }

  get waitingCount(): number {
    return this.front.length + this.queue.length - this.queueHead;
  }

  get isEmpty(): boolean {
    return this.runningCount === 0 && this.waitingCount === 0;
  }

  get kvUsage(): number {
    return this.usedBlocks / this.limits.totalBlocks;
  }

  /** Tokens this replica holds or has queued: the router's load measure. */
  get loadTokens(): number {
    return this.usedBlocks * this.limits.blockSize + this.waitingTokens;
  }

  /** Output tokens a decoding request has produced so far (implicit state resolved). */
  generatedOf(request: SimRequest): number {
    return request.phase === 'decode'
      ? request.generatedAtJoin + (this.stepCount - request.joinStep)
      : request.generated;
  }

  enqueue(request: SimRequest): void {
    // A sequence that cannot fit the whole cache would be preempted by its own growth forever; the
    // engine refuses it at the door (the fleet checks before routing).
    if (request.inputTokens + request.outputTokens > this.limits.totalBlocks * this.limits.blockSize) {
      throw new Error(
        `request ${request.id} (${request.inputTokens} + ${request.outputTokens} tokens) exceeds the KV cache of ${this.name}`,
      );
    }
    request.replica = this;
    request.phase = 'waiting';
    this.queue.push(request);
    this.waitingTokens += request.prefillTarget;
  }

  /**
   * Plans the next step: picks the batch, allocates its blocks (preempting if running sequences
   * need blocks that are not free), and returns its duration in seconds, or -1 when idle.
   */
  planStep(): number {
    const { blockSize, totalBlocks, maxNumBatchedTokens, maxNumSeqs } = this.limits;
    const s = this.stepCount;
    let budget = maxNumBatchedTokens - this.decodeCount;
    let needBlocks = this.decodeCount > 0 ? (this.residues[s % blockSize] as number) : 0;
    for (const request of this.prefilling) {
      const chunk = Math.min(request.prefillTarget - request.prefilled, Math.max(0, budget));
      request.chunk = chunk;
      budget -= chunk;
      needBlocks += blocksFor(request.prefilled + chunk, blockSize) - blocksFor(request.prefilled, blockSize);
    }
    // Running sequences come first: free blocks for them by evicting the newest running sequences.
    while (totalBlocks - this.usedBlocks < needBlocks) {
      const victim = this.popNewestRunning();
      if (victim === undefined) break;
      if (victim.phase === 'decode') {
        if (victim.residue === s % blockSize) needBlocks--;
      } else {
        needBlocks -=
          blocksFor(victim.prefilled + victim.chunk, blockSize) - blocksFor(victim.prefilled, blockSize);
        budget += victim.chunk;
      }
      this.preempt(victim);
    }
    this.usedBlocks += needBlocks;

    // Then admit waiting requests in order while the budget, the sequence cap and free blocks allow.
    while (budget > 0 && this.runningCount < maxNumSeqs) {
      const next = this.peekWaiting();
      if (next === undefined) break;
      const chunk = Math.min(next.prefillTarget, budget);
      const blocks = blocksFor(chunk, blockSize);
      if (totalBlocks - this.usedBlocks < blocks) break;
      this.shiftWaiting();
      this.usedBlocks += blocks;
      next.phase = 'prefill';
      next.prefilled = 0;
      next.chunk = chunk;
      this.prefilling.push(next);
      this.order.push(next);
      budget -= chunk;
    }

    const decode = this.decodeCount;
    let batchTokens = decode;
    let pairs = this.decodeContextSum + decode;
    let kvRead = this.decodeContextSum + decode;
    for (const request of this.prefilling) {
      const n = request.chunk;
      if (n === 0) continue;
      batchTokens += n;
      pairs += n * request.prefilled + (n * (n + 1)) / 2;
      kvRead += request.prefilled + n;
    }
    if (batchTokens === 0) {
      this.busy = false;
      return -1;
    }
    this.stepDecodeCount = decode;
    this.busy = true;
    return this.model.stepSeconds(batchTokens, pairs, kvRead);
  }

  /** Applies the planned step's results at its end time. */
  completeStep(nowSeconds: number): void {
    const { blockSize } = this.limits;
    const s = this.stepCount + 1;
    this.stepCount = s;
    this.decodeContextSum += this.stepDecodeCount;
    this.generationTokensTotal += this.stepDecodeCount;
    // Decoding sequences that reached their output length this step.
    while (this.finishes.size > 0 && this.finishes.peekKey() <= s) {
      const entry = this.finishes.pop() as FinishEntry;
      const request = entry.request;
      if (entry.epoch !== request.epoch || request.phase !== 'decode') continue;
      const context = request.contextAtJoin + (s - request.joinStep);
      this.leaveDecode(request, context);
      request.generated = request.outputTokens;
      this.usedBlocks -= blocksFor(context, blockSize);
      this.finish(request, nowSeconds);
    }
    // Prefill chunks: a prefill that completes produces the next output token (the first, or the
    // next after a preemption) and the sequence joins the decode set.
    if (this.prefilling.length > 0) {
      const still: SimRequest[] = [];
      for (const request of this.prefilling) {
        request.prefilled += request.chunk;
        request.chunk = 0;
        if (request.prefilled < request.prefillTarget) {
          still.push(request);
          continue;
        }
        request.generated += 1;
        this.generationTokensTotal += 1;
        if (Number.isNaN(request.firstTokenSeconds)) {
          request.firstTokenSeconds = nowSeconds;
          this.promptTokensTotal += request.inputTokens;
          this.listener.firstToken(request, nowSeconds);
        }
        if (request.generated >= request.outputTokens) {
          this.usedBlocks -= blocksFor(request.prefilled, blockSize);
          this.finish(request, nowSeconds);
          continue;
        }
        request.phase = 'decode';
        request.joinStep = s;
        request.contextAtJoin = request.prefillTarget;
        request.generatedAtJoin = request.generated;
        request.residue = mod(s - request.contextAtJoin, blockSize);
        this.residues[request.residue] = (this.residues[request.residue] as number) + 1;
        this.decodeCount++;
        this.decodeContextSum += request.contextAtJoin;
        this.finishes.push(s + request.outputTokens - request.generated, { request, epoch: request.epoch });
      }
      this.prefilling = still;
    }
    this.busy = false;
  }

  /** Removes every request (drain deadline passed, or the pod was killed); returns them. */
  abortAll(): SimRequest[] {
    const aborted: SimRequest[] = [];
    for (const request of this.order) {
      if (request.phase === 'decode' || request.phase === 'prefill') {
        if (request.phase === 'decode') request.generated = this.generatedOf(request);
        aborted.push(request);
      }
    }
    let next = this.shiftWaiting();
    while (next !== undefined) {
      aborted.push(next);
      next = this.shiftWaiting();
    }
    for (const request of aborted) {
      request.epoch++;
      request.replica = undefined;
    }
    this.prefilling = [];
    this.order = [];
    this.orderDead = 0;
    this.decodeCount = 0;
    this.decodeContextSum = 0;
    this.residues.fill(0);
    this.usedBlocks = 0;
    this.waitingTokens = 0;
    this.busy = false;
    this.generation++;
    return aborted;
  }

  private finish(request: SimRequest, nowSeconds: number): void {
    request.phase = 'done';
    request.finishedSeconds = nowSeconds;
    request.replica = undefined;
    this.orderDead++;
    this.listener.finished(request, nowSeconds);
  }

  private leaveDecode(request: SimRequest, context: number): void {
    this.residues[request.residue] = (this.residues[request.residue] as number) - 1;
    this.decodeCount--;
    this.decodeContextSum -= context;
    request.epoch++;
  }

  private preempt(victim: SimRequest): void {
    const { blockSize } = this.limits;
    if (victim.phase === 'decode') {
      const context = victim.contextAtJoin + (this.stepCount - victim.joinStep);
      victim.generated = victim.generatedAtJoin + (this.stepCount - victim.joinStep);
      this.leaveDecode(victim, context);
      this.usedBlocks -= blocksFor(context, blockSize);
    } else {
      this.usedBlocks -= blocksFor(victim.prefilled, blockSize);
      this.prefilling = this.prefilling.filter((r) => r !== victim);
    }
    victim.phase = 'waiting';
    victim.prefillTarget = victim.inputTokens + victim.generated;
    victim.prefilled = 0;
    victim.chunk = 0;
    victim.preemptions++;
    this.preemptionsTotal++;
    this.front.push(victim);
    this.waitingTokens += victim.prefillTarget;
  }

  private popNewestRunning(): SimRequest | undefined {
    while (this.order.length > 0) {
      const candidate = this.order.pop() as SimRequest;
      if (candidate.phase === 'decode' || candidate.phase === 'prefill') {
        if (candidate.replica === this) return candidate;
      }
      this.orderDead = Math.max(0, this.orderDead - 1);
    }
    return undefined;
  }

  private peekWaiting(): SimRequest | undefined {
    if (this.front.length > 0) return this.front[this.front.length - 1];
    return this.queueHead < this.queue.length ? this.queue[this.queueHead] : undefined;
  }

  private shiftWaiting(): SimRequest | undefined {
    let next: SimRequest | undefined;
    if (this.front.length > 0) next = this.front.pop();
    else if (this.queueHead < this.queue.length) {
      next = this.queue[this.queueHead];
      this.queue[this.queueHead] = undefined as unknown as SimRequest;
      this.queueHead++;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
    }
    if (next !== undefined) this.waitingTokens -= next.prefillTarget;
    return next;
  }

  /** Drops finished requests from the admission-order list once they are half of it. */
  compactOrder(): void {
    if (this.orderDead * 2 <= this.order.length || this.order.length < 64) return;
    this.order = this.order.filter(
      (r) => r.replica === this && (r.phase === 'decode' || r.phase === 'prefill'),
    );
    this.orderDead = 0;
  }
}

function blocksFor(tokens: number, blockSize: number): number {
  return Math.ceil(tokens / blockSize);
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
