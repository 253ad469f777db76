import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { BINDING_CONSTRAINTS } from '../config/tokenscaler-spec.ts';
import type { DecisionListener } from '../reconcile/ports.ts';
import type { ScalerState } from '../reconcile/scaler-state.ts';

/**
 * The controller's own Prometheus metrics (served on /metrics of the metrics port). Labels are
 * bounded: namespace and name of scalers that exist (series are removed with the scaler), the binding
 * constraints of DESIGN.md, the error codes of the sources, and fixed quantiles.
 */
export class ControllerMetrics implements DecisionListener {
  readonly #desired: Gauge<'namespace' | 'name'>;
  readonly #current: Gauge<'namespace' | 'name'>;
  readonly #ready: Gauge<'namespace' | 'name'>;
  readonly #demand: Gauge<'namespace' | 'name'>;
  readonly #inflight: Gauge<'namespace' | 'name'>;
  readonly #waiting: Gauge<'namespace' | 'name'>;
  readonly #capacity: Gauge<'namespace' | 'name' | 'source'>;
  readonly #modelCapacity: Gauge<'namespace' | 'name'>;
  readonly #drift: Gauge<'namespace' | 'name'>;
  readonly #binding: Gauge<'namespace' | 'name' | 'constraint'>;
  readonly #requestTokens: Gauge<'namespace' | 'name' | 'direction' | 'quantile'>;
  readonly #ratio: Gauge<'namespace' | 'name'>;
  readonly #available: Gauge<'namespace' | 'name'>;
  readonly #fallback: Gauge<'namespace' | 'name'>;
  readonly #fits: Gauge<'namespace' | 'name'>;
  readonly #tickDuration: Histogram<'namespace' | 'name'>;
  readonly #errors: Counter<'namespace' | 'name' | 'code'>;
  readonly #scalers: Gauge;
  readonly #known = new Map<
    string,
    { namespace: string; name: string; errorCodes: Set<string>; sources: Set<string> }
  >();

  constructor(registry: Registry) {
    const registers = [registry];
    const perScaler = ['namespace', 'name'] as const;
    const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames: perScaler, registers });
    this.#desired = gauge('tokenscaler_desired_replicas', 'Replicas the latest decision asks for.');
    this.#current = gauge(
      'tokenscaler_current_replicas',
      'Replicas the scale target runs (ready or starting).',
    );
    this.#ready = gauge(
      'tokenscaler_ready_replicas',
      'Ready replicas of the scale target (or pods reporting metrics, standalone).',
    );
    this.#demand = gauge(
      'tokenscaler_demand_tokens',
      'Windowed percentile of in-flight token demand used by the decision.',
    );
    this.#inflight = gauge(
      'tokenscaler_inflight_tokens',
      'Tokens in flight (running and waiting requests, projected to completion).',
    );
    this.#waiting = gauge('tokenscaler_waiting_tokens', 'Prompt tokens waiting for prefill.');
    this.#capacity = new Gauge({
      name: 'tokenscaler_tokens_per_replica',
      help: 'KV tokens one replica holds, as used by the decision (source: engine-reported or model).',
      labelNames: ['namespace', 'name', 'source'],
      registers,
    });
    this.#modelCapacity = gauge(
      'tokenscaler_model_tokens_per_replica',
      'KV tokens per replica from the capacity model.',
    );
    this.#drift = gauge('tokenscaler_capacity_drift_ratio', 'Engine-reported capacity / model capacity - 1.');
    this.#binding = new Gauge({
      name: 'tokenscaler_binding_constraint',
      help: 'The constraint that bound the latest decision (1) and the others (0).',
      labelNames: ['namespace', 'name', 'constraint'],
      registers,
    });
    this.#requestTokens = new Gauge({
      name: 'tokenscaler_request_tokens',
      help: 'Per-request token percentiles observed across the fleet.',
      labelNames: ['namespace', 'name', 'direction', 'quantile'],
      registers,
    });
    this.#ratio = gauge(
      'tokenscaler_input_output_ratio',
      'Prompt tokens per generated token (rate over the window).',
    );
    this.#available = gauge('tokenscaler_metrics_available', '1 when the latest tick had token metrics.');
    this.#fallback = gauge(
      'tokenscaler_fallback_active',
      '1 while the fallback applies (metrics missing too long).',
    );
    this.#fits = gauge(
      'tokenscaler_fits',
      '1 when the P95 request fits one replica, 0 when not (absent when unknown).',
    );
    this.#tickDuration = new Histogram({
      name: 'tokenscaler_decision_duration_seconds',
      help: 'Time to observe and decide for one scaler.',
      labelNames: perScaler,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#errors = new Counter({
      name: 'tokenscaler_source_errors_total',
      help: 'Failed observations or scale-target reads, by error code.',
      labelNames: ['namespace', 'name', 'code'],
      registers,
    });
    this.#scalers = new Gauge({
      name: 'tokenscaler_scalers',
      help: 'TokenScalers the controller reconciles.',
      registers,
    });
  }

  onDecision(state: ScalerState): void {
    const { namespace, name } = state.scaler;
    const labels = { namespace, name };
    const key = `${namespace}/${name}`;
    const known = this.#known.get(key) ?? {
      namespace,
      name,
      errorCodes: new Set<string>(),
      sources: new Set<string>(),
    };
    this.#known.set(key, known);
    this.#scalers.set(this.#known.size);

    const set = (g: Gauge<'namespace' | 'name'>, value: number | undefined) => {
      if (value === undefined || !Number.isFinite(value)) g.remove(labels);
      else g.set(labels, value);
    };
    const d = state.decision;
    set(this.#desired, d?.desiredReplicas);
    set(this.#current, state.replicas?.current);
    set(this.#ready, state.replicas?.ready);
    set(this.#demand, d?.demandTokens);
    set(this.#inflight, state.observation?.inflightTokens);
    set(this.#waiting, state.observation?.waitingTokens);
    set(this.#modelCapacity, state.capacity?.tokensPerReplica);
    set(this.#drift, state.capacityDriftRatio);
    set(this.#available, d === undefined ? undefined : Number(d.metricsAvailable));
    set(this.#fallback, d === undefined ? undefined : Number(d.fallbackActive));
    set(this.#fits, d?.fits === undefined ? undefined : Number(d.fits));
    if (state.tokensPerReplica !== undefined && state.capacitySource !== undefined) {
      for (const source of known.sources) this.#capacity.remove({ ...labels, source });
      known.sources.add(state.capacitySource);
      this.#capacity.set({ ...labels, source: state.capacitySource }, state.tokensPerReplica);
    }
    if (d !== undefined) {
      for (const constraint of BINDING_CONSTRAINTS) {
        this.#binding.set({ ...labels, constraint }, constraint === d.bindingConstraint ? 1 : 0);
      }
    }
    const obs = state.observation;
    for (const [direction, percentiles] of [
      ['input', obs?.requestInputTokens],
      ['output', obs?.requestOutputTokens],
    ] as const) {
      for (const [quantile, value] of [
        ['0.5', percentiles?.p50],
        ['0.95', percentiles?.p95],
        ['0.99', percentiles?.p99],
      ] as const) {
        const l = { ...labels, direction, quantile };
        if (value === undefined) this.#requestTokens.remove(l);
        else this.#requestTokens.set(l, value);
      }
    }
    const prompt = obs?.promptTokensPerSecond;
    const generated = obs?.generationTokensPerSecond;
    set(
      this.#ratio,
      prompt !== undefined && generated !== undefined && generated > 0 ? prompt / generated : undefined,
    );
    if (state.lastTickDurationSeconds !== undefined)
      this.#tickDuration.observe(labels, state.lastTickDurationSeconds);
    if (state.lastError !== undefined && state.lastError.atSeconds === d?.decidedAtSeconds) {
      known.errorCodes.add(state.lastError.code);
      this.#errors.inc({ ...labels, code: state.lastError.code });
    }
  }

  onScalerRemoved(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const known = this.#known.get(key);
    const labels = { namespace, name };
    for (const g of [
      this.#desired,
      this.#current,
      this.#ready,
      this.#demand,
      this.#inflight,
      this.#waiting,
      this.#modelCapacity,
      this.#drift,
      this.#ratio,
      this.#available,
      this.#fallback,
      this.#fits,
    ]) {
      g.remove(labels);
    }
    for (const constraint of BINDING_CONSTRAINTS) this.#binding.remove({ ...labels, constraint });
    for (const source of known?.sources ?? []) this.#capacity.remove({ ...labels, source });
    for (const direction of ['input', 'output']) {
      for (const quantile of ['0.5', '0.95', '0.99'])
        this.#requestTokens.remove({ ...labels, direction, quantile });
    }
    for (const code of known?.errorCodes ?? []) this.#errors.remove({ ...labels, code });
    this.#tickDuration.remove(labels);
    this.#known.delete(key);
    this.#scalers.set(this.#known.size);
  }
}
