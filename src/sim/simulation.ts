import type { HpaPod } from '../core/hpa.ts';
import { MinHeap } from './heap.ts';
import { type EngineLimits, Replica, type ReplicaListener, SimRequest, type StepCost } from './replica.ts';
import {
  OutputLengthEstimator,
  type PodSample,
  type Scrape,
  ScrapeStore,
  TokenHistogram,
} from './signals.ts';
import type { TraceRequest } from './trace.ts';

/**
 * The discrete-event simulation of one fleet under one scaling policy: arrivals from the trace,
 * engine steps of every replica, cold starts, drains, metric scrapes and the policy's control loops,
 * all on one event queue in simulated seconds. Pure and deterministic: the same trace, settings and
 * policy give the same result.
 */

export interface FleetSettings {
  limits: EngineLimits;
  tokensPerReplica: number;
  gpusPerReplica: number;
  stepModel: StepCost;
  /** Seconds from pod creation to serving (image pull, weight load, CUDA graphs). Billed. */
  coldStartSeconds: number;
  /** terminationGracePeriodSeconds: a removed replica finishes its requests for at most this long. */
  drainGraceSeconds: number;
  scrapeIntervalSeconds: number;
  minReplicas: number;
  maxReplicas: number;
  initialReplicas: number;
  /** Give up on requests still in flight this long after the last arrival (counted as failed). */
  maxTailSeconds: number;
}

/** What a policy sees and may do at a control tick. */
export interface ControlContext {
  nowSeconds: number;
  fleet: FleetView;
  metrics: ScrapeStore;
}

export interface FleetView {
  /** Deployment spec.replicas. */
  readonly specReplicas: number;
  /** Pods that exist and are not terminating (Deployment status.replicas). */
  readonly statusReplicas: number;
  readonly readyReplicas: number;
  readonly startingReplicas: number;
  readonly drainingReplicas: number;
  readonly tokensPerReplica: number;
  /** Requests in flight at the gateway right now (what Knative's queue-proxy/activator count). */
  readonly inflightRequests: number;
  /** Pods as the HPA lists them. */
  pods(): HpaPod[];
  /** Writes spec.replicas (the /scale subresource), clamped to [min, max]. */
  scaleTo(replicas: number, nowSeconds: number): void;
}

export interface PeriodicTask {
  periodSeconds: number;
  /** Offset of the first run from t = 0. */
  phaseSeconds: number;
  run(context: ControlContext): void;
}

/** A scaling policy, built fresh for each run. */
export interface PolicyRuntime {
  tasks: PeriodicTask[];
  /** Per-scrape annotation for the timeline (e.g. tokenscaler's binding constraint). */
  annotate?(): string | undefined;
}

export interface TimelinePoint {
  atSeconds: number;
  specReplicas: number;
  /** Pods billed: starting, ready and draining. */
  provisionedReplicas: number;
  readyReplicas: number;
  /** Prompt + true output of requests in flight (what the fleet really must hold). */
  trueInflightTokens: number;
  /** Prompt tokens that arrived since the previous point. */
  arrivedPromptTokens: number;
  kvUsage: number;
  waitingRequests: number;
  annotation?: string;
}

export interface RunResult {
  requests: SimRequest[];
  timeline: TimelinePoint[];
  /** Replica-seconds billed (pod creation to removal), summed. */
  replicaSeconds: number;
  endSeconds: number;
  preemptions: number;
  scaleEvents: number;
  peakReplicas: number;
  failed: number;
  /** Requests whose prompt + output cannot fit one replica's KV cache (rejected by the engine). */
  rejected: number;
  /** Requests killed when a draining replica ran out of grace, or still running at the end. */
  aborted: number;
}

type SimEvent =
  | { kind: 'step'; replica: Replica; generation: number }
  | { kind: 'ready'; replica: Replica }
  | { kind: 'deadline'; replica: Replica }
  | { kind: 'task'; task: PeriodicTask }
  | { kind: 'scrape' };

export function runSimulation(
  trace: readonly TraceRequest[],
  settings: FleetSettings,
  policy: (fleet: FleetView) => PolicyRuntime,
): RunResult {
  return new Simulation(trace, settings, policy).run();
}

class Simulation implements ReplicaListener, FleetView {
  private readonly settings: FleetSettings;
  private readonly requests: SimRequest[];
  private readonly events = new MinHeap<SimEvent>();
  private readonly metrics: ScrapeStore;
  private readonly policy: PolicyRuntime;
  private now = 0;

  private readonly replicas: Replica[] = [];
  /** Ready and not draining: the router's candidates. */
  private routable: Replica[] = [];
  private nextReplicaId = 0;
  private spec = 0;
  private scaleEventCount = 0;
  private peak = 0;
  private replicaSecondsGone = 0;

  /** Requests that arrived while no replica was ready, held at the gateway. */
  private pending: SimRequest[] = [];
  private readonly inflight: SimRequest[] = [];
  private remaining = 0;

  // Gateway counters and gauges. Like src/gateway, the counters and token histograms count a
  // request when it settles (completes or fails); the in-flight and waiting gauges from its arrival.
  private requestsTotal = 0;
  private inputTokensTotal = 0;
  private outputTokensTotal = 0;
  private arrivedInputTokens = 0;
  private waitingPromptTokens = 0;
  private trueInflightTokens = 0;
  private readonly inputHistogram = new TokenHistogram();
  private readonly outputHistogram = new TokenHistogram();
  private readonly estimator = new OutputLengthEstimator();
  // Counters of replicas that are gone (their series vanish, but fleet totals keep them).
  private gonePrompt = 0;
  private goneGeneration = 0;
  private gonePreemptions = 0;

  private readonly timeline: TimelinePoint[] = [];
  private lastArrivedPrompt = 0;
  private failed = 0;
  private rejected = 0;
  private aborted = 0;

  constructor(
    trace: readonly TraceRequest[],
    settings: FleetSettings,
    policy: (fleet: FleetView) => PolicyRuntime,
  ) {
    this.settings = settings;
    this.requests = trace.map((r, i) => new SimRequest(i, r.arrivalSeconds, r.inputTokens, r.outputTokens));
    this.remaining = this.requests.length;
    // Keep enough history for the longest rate/percentile window a policy uses (10 min).
    this.metrics = new ScrapeStore(900);
    this.policy = policy(this);
  }

  // FleetView ---------------------------------------------------------------------------------

  get specReplicas(): number {
    return this.spec;
  }
  get statusReplicas(): number {
    let n = 0;
    for (const r of this.replicas) if (r.state === 'starting' || r.state === 'ready') n++;
    return n;
  }
  get readyReplicas(): number {
    return this.routable.length;
  }
  get startingReplicas(): number {
    let n = 0;
    for (const r of this.replicas) if (r.state === 'starting') n++;
    return n;
  }
  get drainingReplicas(): number {
    let n = 0;
    for (const r of this.replicas) if (r.state === 'draining') n++;
    return n;
  }
  get tokensPerReplica(): number {
    return this.settings.tokensPerReplica;
  }
  get inflightRequests(): number {
    return this.inflight.length;
  }

  pods(): HpaPod[] {
    const pods: HpaPod[] = [];
    for (const r of this.replicas) {
      if (r.state === 'gone') continue;
      // A loading engine pod is Running but not Ready; a removed one carries a deletion timestamp.
      pods.push({
        name: r.name,
        phase: 'Running',
        ready: r.state === 'ready',
        deleting: r.state === 'draining',
      });
    }
    return pods;
  }

  scaleTo(replicas: number, nowSeconds: number): void {
    const target = Math.max(
      this.settings.minReplicas,
      Math.min(this.settings.maxReplicas, Math.round(replicas)),
    );
    if (target === this.spec) return;
    this.spec = target;
    this.scaleEventCount++;
    this.reconcileReplicaSet(nowSeconds);
  }

  // ReplicaListener ---------------------------------------------------------------------------

  firstToken(request: SimRequest): void {
    this.waitingPromptTokens -= request.inputTokens;
  }

  finished(request: SimRequest): void {
    this.requestsTotal++;
    this.inputTokensTotal += request.inputTokens;
    this.outputTokensTotal += request.outputTokens;
    this.inputHistogram.observe(request.inputTokens);
    this.outputHistogram.observe(request.outputTokens);
    this.estimator.observe(request.outputTokens);
    this.leaveInflight(request);
  }

  // The run -----------------------------------------------------------------------------------

  run(): RunResult {
    const s = this.settings;
    this.spec = Math.max(s.minReplicas, Math.min(s.maxReplicas, s.initialReplicas));
    for (let i = 0; i < this.spec; i++) this.createReplica(0, 0);
    this.peak = this.spec;
    this.events.push(0, { kind: 'scrape' });
    for (const task of this.policy.tasks) this.events.push(task.phaseSeconds, { kind: 'task', task });

    const arrivals = this.requests;
    const lastArrival =
      arrivals.length > 0 ? (arrivals[arrivals.length - 1] as SimRequest).arrivalSeconds : 0;
    const giveUpAt = lastArrival + s.maxTailSeconds;
    let next = 0;
    while (this.remaining > 0) {
      const arrivalAt =
        next < arrivals.length ? (arrivals[next] as SimRequest).arrivalSeconds : Number.POSITIVE_INFINITY;
      const eventAt = this.events.peekKey();
      if (arrivalAt === Number.POSITIVE_INFINITY && eventAt > giveUpAt) break;
      if (arrivalAt <= eventAt) {
        this.now = arrivalAt;
        this.arrive(arrivals[next] as SimRequest);
        next++;
        continue;
      }
      this.now = eventAt;
      this.handle(this.events.pop() as SimEvent);
    }
    const end = this.remaining > 0 ? giveUpAt : Math.max(this.now, lastArrival);
    // Requests still in flight when the simulation gives up count as failed.
    for (const request of [...this.inflight]) {
      this.aborted++;
      this.fail(request);
    }
    let replicaSeconds = this.replicaSecondsGone;
    for (const r of this.replicas) if (r.state !== 'gone') replicaSeconds += end - r.createdSeconds;
    let preemptions = this.gonePreemptions;
    for (const r of this.replicas) if (r.state !== 'gone') preemptions += r.preemptionsTotal;
    return {
      requests: this.requests,
      timeline: this.timeline,
      replicaSeconds,
      endSeconds: end,
      preemptions,
      scaleEvents: this.scaleEventCount,
      peakReplicas: this.peak,
      failed: this.failed,
      rejected: this.rejected,
      aborted: this.aborted,
    };
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'step': {
        const replica = event.replica;
        if (event.generation !== replica.generation || replica.state === 'gone') return;
        replica.completeStep(this.now);
        replica.compactOrder();
        if (replica.state === 'draining' && replica.isEmpty) {
          this.remove(replica);
          return;
        }
        this.kick(replica);
        return;
      }
      case 'ready': {
        const replica = event.replica;
        if (replica.state !== 'starting') return;
        replica.state = 'ready';
        this.routable.push(replica);
        const held = this.pending;
        this.pending = [];
        for (const request of held) this.dispatch(request);
        return;
      }
      case 'deadline': {
        const replica = event.replica;
        if (replica.state !== 'draining') return;
        for (const request of replica.abortAll()) {
          this.aborted++;
          this.fail(request);
        }
        this.remove(replica);
        return;
      }
      case 'scrape':
        this.scrape();
        this.events.push(this.now + this.settings.scrapeIntervalSeconds, event);
        return;
      case 'task': {
        event.task.run({ nowSeconds: this.now, fleet: this, metrics: this.metrics });
        this.events.push(this.now + event.task.periodSeconds, event);
        return;
      }
    }
  }

  private arrive(request: SimRequest): void {
    this.arrivedInputTokens += request.inputTokens;
    // The engine refuses a request whose prompt and output cannot fit one replica's KV cache
    // (max_model_len is never above what the cache holds).
    if (request.inputTokens + request.outputTokens > this.settings.tokensPerReplica) {
      this.rejected++;
      this.failed++;
      this.requestsTotal++;
      request.phase = 'failed';
      this.remaining--;
      return;
    }
    request.inflightIndex = this.inflight.length;
    this.inflight.push(request);
    this.waitingPromptTokens += request.inputTokens;
    this.trueInflightTokens += request.inputTokens + request.outputTokens;
    this.dispatch(request);
  }

  /** Least-loaded routing (fewest KV + queued tokens) over ready replicas, as a token-aware gateway does. */
  private dispatch(request: SimRequest): void {
    const candidates = this.routable;
    if (candidates.length === 0) {
      request.phase = 'pending';
      this.pending.push(request);
      return;
    }
    let best = candidates[0] as Replica;
    let bestLoad = best.loadTokens;
    for (let i = 1; i < candidates.length; i++) {
      const candidate = candidates[i] as Replica;
      const load = candidate.loadTokens;
      if (load < bestLoad) {
        best = candidate;
        bestLoad = load;
      }
    }
    best.enqueue(request);
    if (!best.busy) this.kick(best);
  }

  private kick(replica: Replica): void {
    const seconds = replica.planStep();
    if (seconds >= 0) {
      this.events.push(this.now + seconds, { kind: 'step', replica, generation: replica.generation });
    } else if (replica.state === 'draining' && replica.isEmpty) {
      this.remove(replica);
    }
  }

  private leaveInflight(request: SimRequest): void {
    const index = request.inflightIndex;
    if (index < 0) return;
    const last = this.inflight.pop() as SimRequest;
    if (last !== request) {
      this.inflight[index] = last;
      last.inflightIndex = index;
    }
    request.inflightIndex = -1;
    this.trueInflightTokens -= request.inputTokens + request.outputTokens;
    this.remaining--;
  }

  private fail(request: SimRequest): void {
    if (Number.isNaN(request.firstTokenSeconds)) this.waitingPromptTokens -= request.inputTokens;
    request.phase = 'failed';
    request.replica = undefined;
    this.failed++;
    this.requestsTotal++;
    this.leaveInflight(request);
  }

  private createReplica(nowSeconds: number, coldStartSeconds: number): void {
    const s = this.settings;
    const replica = new Replica(
      this.nextReplicaId++,
      nowSeconds,
      nowSeconds + coldStartSeconds,
      s.limits,
      s.stepModel,
      this,
    );
    this.replicas.push(replica);
    if (coldStartSeconds <= 0) {
      replica.state = 'ready';
      this.routable.push(replica);
    } else {
      this.events.push(replica.readyAtSeconds, { kind: 'ready', replica });
    }
  }

  /**
   * The ReplicaSet controller: create pods up to spec, or delete the surplus, choosing victims as it
   * does (not-ready pods first, then the most recently ready). A deleted starting pod goes at once; a
   * deleted ready pod leaves the Service endpoints and drains its requests for up to the grace period.
   */
  private reconcileReplicaSet(nowSeconds: number): void {
    const live = this.replicas.filter((r) => r.state === 'starting' || r.state === 'ready');
    if (live.length < this.spec) {
      for (let i = live.length; i < this.spec; i++)
        this.createReplica(nowSeconds, this.settings.coldStartSeconds);
    } else if (live.length > this.spec) {
      const victims = live
        .sort((a, b) => {
          const aReady = a.state === 'ready' ? 1 : 0;
          const bReady = b.state === 'ready' ? 1 : 0;
          if (aReady !== bReady) return aReady - bReady;
          return b.readyAtSeconds - a.readyAtSeconds || b.id - a.id;
        })
        .slice(0, live.length - this.spec);
      for (const victim of victims) {
        if (victim.state === 'starting') {
          this.remove(victim);
          continue;
        }
        victim.state = 'draining';
        victim.drainDeadlineSeconds = nowSeconds + this.settings.drainGraceSeconds;
        this.routable = this.routable.filter((r) => r !== victim);
        if (victim.isEmpty && !victim.busy) this.remove(victim);
        else this.events.push(victim.drainDeadlineSeconds, { kind: 'deadline', replica: victim });
      }
    }
    let billed = 0;
    for (const r of this.replicas) if (r.state !== 'gone') billed++;
    if (billed > this.peak) this.peak = billed;
  }

  private remove(replica: Replica): void {
    if (replica.state === 'gone') return;
    replica.state = 'gone';
    replica.goneSeconds = this.now;
    replica.generation++;
    this.replicaSecondsGone += this.now - replica.createdSeconds;
    this.gonePrompt += replica.promptTokensTotal;
    this.goneGeneration += replica.generationTokensTotal;
    this.gonePreemptions += replica.preemptionsTotal;
    this.routable = this.routable.filter((r) => r !== replica);
    // Keep the list short: gone replicas only matter for their billed seconds, already counted.
    const index = this.replicas.indexOf(replica);
    if (index >= 0) this.replicas.splice(index, 1);
  }

  private scrape(): void {
    const pods: PodSample[] = [];
    let prompt = this.gonePrompt;
    let generation = this.goneGeneration;
    let preemptions = this.gonePreemptions;
    let usedBlocks = 0;
    let totalBlocks = 0;
    let waitingRequests = 0;
    let provisioned = 0;
    for (const r of this.replicas) {
      if (r.state === 'gone') continue;
      provisioned++;
      prompt += r.promptTokensTotal;
      generation += r.generationTokensTotal;
      preemptions += r.preemptionsTotal;
      // A starting engine serves no /metrics yet.
      if (r.state === 'starting') continue;
      pods.push({
        name: r.name,
        ready: r.state === 'ready',
        deleting: r.state === 'draining',
        runningRequests: r.runningCount,
        waitingRequests: r.waitingCount,
        kvUsage: r.kvUsage,
      });
      usedBlocks += r.usedBlocks;
      totalBlocks += r.limits.totalBlocks;
      waitingRequests += r.waitingCount;
    }
    let inflightTokens = 0;
    for (const request of this.inflight) {
      const generated =
        request.replica === undefined ? request.generated : request.replica.generatedOf(request);
      inflightTokens += request.inputTokens + this.estimator.expected(generated);
    }
    const scrape: Scrape = {
      atSeconds: this.now,
      pods,
      promptTokensTotal: prompt,
      generationTokensTotal: generation,
      preemptionsTotal: preemptions,
      requestsTotal: this.requestsTotal,
      inputTokensTotal: this.inputTokensTotal,
      outputTokensTotal: this.outputTokensTotal,
      inflightRequests: this.inflight.length,
      inflightTokens,
      waitingTokens: this.waitingPromptTokens,
      inputHistogram: this.inputHistogram.snapshot(),
      outputHistogram: this.outputHistogram.snapshot(),
    };
    this.metrics.add(scrape);
    const annotation = this.policy.annotate?.();
    this.timeline.push({
      atSeconds: this.now,
      specReplicas: this.spec,
      provisionedReplicas: provisioned,
      readyReplicas: this.routable.length,
      trueInflightTokens: this.trueInflightTokens,
      arrivedPromptTokens: this.arrivedInputTokens - this.lastArrivedPrompt,
      kvUsage: totalBlocks > 0 ? usedBlocks / totalBlocks : 0,
      waitingRequests: waitingRequests + this.pending.length,
      ...(annotation !== undefined ? { annotation } : {}),
    });
    this.lastArrivedPrompt = this.arrivedInputTokens;
  }
}
