import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * A simulated fleet of vLLM replicas for the demo: each replica admits requests while its KV cache
 * has room, prefills at a fixed token rate, decodes with a per-token time that grows with the batch,
 * preempts the newest request when the cache runs out, and exposes the metrics vLLM exposes
 * (reference/engine-metrics.md section 1), so the controller reads it exactly as it reads vLLM.
 * Time is simulated: `advance(dtSeconds)` moves it; the demo advances faster than real time.
 */

export interface DemoRequest {
  id: number;
  inputTokens: number;
  outputTokens: number;
}

export interface FleetOptions {
  kvCapacityTokens: number;
  blockSize: number;
  /** Prompt tokens one replica prefills per second. */
  prefillTokensPerSecond: number;
  /** Time per output token with a batch of one, and how much each running request adds. */
  baseTimePerOutputTokenSeconds: number;
  timePerOutputTokenPerRunningSeconds: number;
  /** Seconds a new replica takes before it serves (image pull, weights load). */
  coldStartSeconds: number;
  modelName: string;
}

interface Running {
  request: DemoRequest;
  arrivedAt: number;
  prefilledTokens: number;
  generatedTokens: number;
  firstTokenAt?: number;
}

export interface ReplicaSnapshot {
  id: number;
  ready: boolean;
  draining: boolean;
  running: number;
  waiting: number;
  kvUsedTokens: number;
}

class Replica {
  readonly id: number;
  readonly registry = new Registry();
  readonly readyAt: number;
  draining = false;
  readonly queue: Running[] = [];
  readonly running: Running[] = [];
  readonly #options: FleetOptions;
  readonly #metrics;

  constructor(id: number, now: number, options: FleetOptions) {
    this.id = id;
    this.readyAt = now + options.coldStartSeconds;
    this.#options = options;
    const registers = [this.registry];
    const labelNames = ['model_name', 'engine'] as const;
    this.#metrics = {
      running: new Gauge({
        name: 'vllm:num_requests_running',
        help: 'Running requests.',
        labelNames,
        registers,
      }),
      waiting: new Gauge({
        name: 'vllm:num_requests_waiting',
        help: 'Waiting requests.',
        labelNames,
        registers,
      }),
      kvUsage: new Gauge({
        name: 'vllm:kv_cache_usage_perc',
        help: 'KV-cache usage. 1 means 100 percent usage.',
        labelNames,
        registers,
      }),
      cacheConfig: new Gauge({
        name: 'vllm:cache_config_info',
        help: 'Information of the LLMEngine CacheConfig',
        labelNames: ['block_size', 'num_gpu_blocks', 'cache_dtype', 'gpu_memory_utilization', 'engine'],
        registers,
      }),
      prompt: new Counter({
        name: 'vllm:prompt_tokens_total',
        help: 'Prefill tokens processed.',
        labelNames,
        registers,
      }),
      generation: new Counter({
        name: 'vllm:generation_tokens_total',
        help: 'Generation tokens processed.',
        labelNames,
        registers,
      }),
      preemptions: new Counter({
        name: 'vllm:num_preemptions_total',
        help: 'Cumulative preemptions.',
        labelNames,
        registers,
      }),
      promptHistogram: new Histogram({
        name: 'vllm:request_prompt_tokens',
        help: 'Prefill tokens per request.',
        labelNames,
        buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000],
        registers,
      }),
      generationHistogram: new Histogram({
        name: 'vllm:request_generation_tokens',
        help: 'Generation tokens per request.',
        labelNames,
        buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000],
        registers,
      }),
      ttft: new Histogram({
        name: 'vllm:time_to_first_token_seconds',
        help: 'Time to first token.',
        labelNames,
        buckets: [0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80],
        registers,
      }),
    };
    const numGpuBlocks = Math.floor(options.kvCapacityTokens / options.blockSize);
    this.#metrics.cacheConfig.set(
      {
        block_size: String(options.blockSize),
        num_gpu_blocks: String(numGpuBlocks),
        cache_dtype: 'auto',
        gpu_memory_utilization: '0.9',
        engine: '0',
      },
      1,
    );
    this.#publish();
  }

  get labels() {
    return { model_name: this.#options.modelName, engine: '0' };
  }

  ready(now: number): boolean {
    return now >= this.readyAt;
  }

  /** KV tokens allocated: a running request holds blocks for its whole prompt from admission on. */
  kvUsedTokens(): number {
    let tokens = 0;
    for (const r of this.running) tokens += r.request.inputTokens + r.generatedTokens;
    return tokens;
  }

  /** Tokens this replica has promised: what runs plus what waits (for dispatch). */
  load(): number {
    let tokens = this.kvUsedTokens();
    for (const r of this.queue) tokens += r.request.inputTokens;
    return tokens;
  }

  step(now: number, dt: number, finished: (r: Running) => void): void {
    if (!this.ready(now)) return;
    const o = this.#options;
    // Admit from the queue while the prompt fits in free KV blocks (vLLM admits on prompt blocks).
    while (this.queue.length > 0) {
      const next = this.queue[0] as Running;
      if (this.kvUsedTokens() + next.request.inputTokens + next.generatedTokens > o.kvCapacityTokens) break;
      this.queue.shift();
      this.running.push(next);
    }
    // Prefill shares the step's compute budget across requests still prefilling, oldest first.
    let prefillBudget = o.prefillTokensPerSecond * dt;
    for (const r of this.running) {
      if (prefillBudget <= 0) break;
      const remaining = r.request.inputTokens - r.prefilledTokens;
      if (remaining <= 0) continue;
      const done = Math.min(remaining, prefillBudget);
      r.prefilledTokens += done;
      prefillBudget -= done;
      this.#metrics.prompt.inc(this.labels, done);
    }
    // Decode: every prefilled request emits tokens at the batch's time per token.
    const batch = this.running.length;
    const tpot = o.baseTimePerOutputTokenSeconds + o.timePerOutputTokenPerRunningSeconds * batch;
    const perRequest = dt / tpot;
    let generated = 0;
    for (const r of this.running) {
      if (r.prefilledTokens < r.request.inputTokens) continue;
      const step = Math.min(perRequest, r.request.outputTokens - r.generatedTokens);
      if (r.generatedTokens === 0 && step > 0) {
        r.firstTokenAt = now;
        this.#metrics.ttft.observe(this.labels, now - r.arrivedAt);
      }
      r.generatedTokens += step;
      generated += step;
    }
    this.#metrics.generation.inc(this.labels, generated);
    // Out of KV: preempt the newest request and recompute it later (vLLM's default recompute mode).
    while (this.kvUsedTokens() > o.kvCapacityTokens && this.running.length > 1) {
      const victim = this.running.pop() as Running;
      // Recompute: the prompt and what was generated are prefilled again on readmission.
      victim.prefilledTokens = 0;
      this.queue.unshift(victim);
      this.#metrics.preemptions.inc(this.labels);
    }
    for (let i = this.running.length - 1; i >= 0; i--) {
      const r = this.running[i] as Running;
      if (r.generatedTokens >= r.request.outputTokens) {
        this.running.splice(i, 1);
        this.#metrics.promptHistogram.observe(this.labels, r.request.inputTokens);
        this.#metrics.generationHistogram.observe(this.labels, r.request.outputTokens);
        finished(r);
      }
    }
    this.#publish();
  }

  #publish(): void {
    this.#metrics.running.set(this.labels, this.running.length);
    this.#metrics.waiting.set(this.labels, this.queue.length);
    this.#metrics.kvUsage.set(this.labels, Math.min(1, this.kvUsedTokens() / this.#options.kvCapacityTokens));
  }
}

export class DemoFleet {
  readonly #options: FleetOptions;
  readonly #replicas: Replica[] = [];
  #nextId = 0;
  #now = 0;
  #completed = 0;
  #ttftSeconds: number[] = [];
  readonly #allTtftSeconds: number[] = [];

  constructor(options: FleetOptions, initialReplicas: number) {
    this.#options = options;
    for (let i = 0; i < initialReplicas; i++) {
      const replica = new Replica(this.#nextId++, -options.coldStartSeconds, options);
      this.#replicas.push(replica);
    }
  }

  get nowSeconds(): number {
    return this.#now;
  }

  /** Replicas that serve or are starting (not draining): what the Deployment's spec.replicas would say. */
  get currentReplicas(): number {
    return this.#replicas.filter((r) => !r.draining).length;
  }

  get readyReplicas(): number {
    return this.#replicas.filter((r) => !r.draining && r.ready(this.#now)).length;
  }

  get completedRequests(): number {
    return this.#completed;
  }

  /** TTFT of every request finished so far. */
  allTtftSeconds(): readonly number[] {
    return this.#allTtftSeconds;
  }

  /** TTFT of requests finished since the last call, then forgotten. */
  takeTtftSeconds(): number[] {
    const values = this.#ttftSeconds;
    this.#ttftSeconds = [];
    return values;
  }

  /** Metrics registries of replicas that expose /metrics (ready or starting, draining ones too until empty). */
  endpoints(): { id: number; registry: Registry }[] {
    return this.#replicas.filter((r) => r.ready(this.#now)).map((r) => ({ id: r.id, registry: r.registry }));
  }

  snapshot(): ReplicaSnapshot[] {
    return this.#replicas.map((r) => ({
      id: r.id,
      ready: r.ready(this.#now),
      draining: r.draining,
      running: r.running.length,
      waiting: r.queue.length,
      kvUsedTokens: Math.round(r.kvUsedTokens()),
    }));
  }

  /** Scale like a Deployment: add cold-starting replicas, or drain the newest (they finish their requests). */
  scaleTo(requested: number): void {
    // Like a Deployment under an HPA with minReplicas >= 1: never below one replica.
    const replicas = Math.max(1, Math.floor(requested));
    const active = this.#replicas.filter((r) => !r.draining);
    for (let i = active.length; i < replicas; i++)
      this.#replicas.push(new Replica(this.#nextId++, this.#now, this.#options));
    for (let i = active.length - 1; i >= replicas; i--) (active[i] as Replica).draining = true;
  }

  /** Routes a request to the ready replica with the least token load (a KV-aware router). */
  submit(request: DemoRequest): void {
    this.#route({ request, arrivedAt: this.#now, prefilledTokens: 0, generatedTokens: 0 });
  }

  #route(running: Running): void {
    const candidates = this.#replicas.filter((r) => !r.draining && r.ready(this.#now));
    const pool = candidates.length > 0 ? candidates : this.#replicas.filter((r) => !r.draining);
    const target = pool.reduce((best, r) => (r.load() < best.load() ? r : best));
    target.queue.push(running);
  }

  advance(dtSeconds: number): void {
    this.#now += dtSeconds;
    for (const replica of this.#replicas) {
      replica.step(this.#now, dtSeconds, (r) => {
        this.#completed += 1;
        if (r.firstTokenAt !== undefined) {
          this.#ttftSeconds.push(r.firstTokenAt - r.arrivedAt);
          this.#allTtftSeconds.push(r.firstTokenAt - r.arrivedAt);
        }
      });
    }
    // A drained replica leaves once it holds no requests; requests still queued there move back.
    for (let i = this.#replicas.length - 1; i >= 0; i--) {
      const replica = this.#replicas[i] as Replica;
      if (!replica.draining) continue;
      const queued = replica.queue.splice(0);
      if (!replica.ready(this.#now) || replica.running.length === 0) this.#replicas.splice(i, 1);
      for (const r of queued) this.#route(r);
    }
  }
}
