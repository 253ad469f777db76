import { Registry } from 'prom-client';
import type { Readiness } from '../api/app.ts';
import { InMemoryDecisionStore } from '../api/decision-store.ts';
import type { MaterialSource } from '../api/material.ts';
import { createApiMetrics } from '../api/metrics.ts';
import { type ApiServerOptions, type RunningApiServer, startApiServer } from '../api/server.ts';
import type { ScalerDefinition } from '../config/tokenscaler-spec.ts';
import type { DecisionListener, Logger, ObservationSource, ReplicaReader } from '../reconcile/ports.ts';
import { Reconciler } from '../reconcile/reconciler.ts';
import { StorePublisher } from '../reconcile/store-publisher.ts';
import type { FetchLike } from '../sources/http-fetch.ts';
import { createObservationSource, type EndpointResolver } from '../sources/observation-source.ts';
import { ControllerMetrics } from '../telemetry/controller-metrics.ts';
import { type RunningMetricsServer, startMetricsServer } from '../telemetry/metrics-server.ts';

/**
 * Assembles the controller from real adapters: metrics sources per scaler, the reconcile loop, the
 * decision store the metrics APIs read, the API server, and the controller's own /metrics. Used by
 * `tokenscaler controller` and by `tokenscaler demo`; cluster mode adds its Kubernetes listeners and
 * replica reader through `deps`.
 */
export interface ControllerRuntimeOptions {
  tickSeconds: number;
  api: ApiServerOptions;
  /** Where to serve the controller's own /metrics; undefined serves none. */
  metricsListen: { host: string; port: number } | undefined;
}

export interface ControllerRuntimeDeps {
  logger: Logger;
  nowMs: () => number;
  fetch: FetchLike;
  /** Pod discovery for a scaler's metrics.scrape.podSelector (cluster mode, or the demo's fleet). */
  resolverFor?: (scaler: ScalerDefinition) => EndpointResolver;
  /** Serving material of the API server; default: the files of the serving flags. */
  material?: MaterialSource;
  /** More reasons for /readyz to fail (cluster mode: list/watch not healthy). */
  readiness?: () => Readiness;
  /** Reads the scale target; standalone passes one that answers undefined (replicas are inferred). */
  replicas: ReplicaReader;
  listeners?: readonly DecisionListener[];
}

export interface ControllerRuntime {
  readonly reconciler: Reconciler;
  readonly store: InMemoryDecisionStore;
  readonly registry: Registry;
  readonly api: RunningApiServer;
  readonly metricsServer: RunningMetricsServer | undefined;
  setScalers(definitions: readonly ScalerDefinition[]): Promise<void>;
  /** One pass over every scaler; the first marks the API ready. */
  tick(signal?: AbortSignal): Promise<void>;
  /** Ticks until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Replicas are not readable without Kubernetes: the loop infers them from the pods that report. */
export const standaloneReplicaReader: ReplicaReader = { read: async () => undefined };

export async function startControllerRuntime(
  options: ControllerRuntimeOptions,
  deps: ControllerRuntimeDeps,
): Promise<ControllerRuntime> {
  const registry = new Registry();
  const store = new InMemoryDecisionStore();
  const controllerMetrics = new ControllerMetrics(registry);
  const reconciler = new Reconciler({
    sources: (scaler) => adaptSource(scaler, deps),
    replicas: deps.replicas,
    listeners: [new StorePublisher(store), controllerMetrics, ...(deps.listeners ?? [])],
    logger: deps.logger,
    nowMs: deps.nowMs,
    tickSeconds: options.tickSeconds,
  });
  const api = await startApiServer(options.api, {
    store,
    logger: deps.logger,
    metrics: createApiMetrics(registry),
    ...(deps.material !== undefined ? { material: deps.material } : {}),
    ...(deps.readiness !== undefined ? { readiness: deps.readiness } : {}),
  });
  let metricsServer: RunningMetricsServer | undefined;
  try {
    metricsServer =
      options.metricsListen === undefined
        ? undefined
        : await startMetricsServer(registry, options.metricsListen);
  } catch (error) {
    await api.close();
    throw error;
  }

  const tick = async (signal?: AbortSignal) => {
    await reconciler.tick(signal);
    store.markSynced();
  };
  return {
    reconciler,
    store,
    registry,
    api,
    metricsServer,
    setScalers: async (definitions) => {
      for (const d of definitions)
        store.register(d.namespace, d.name, { demandWindowSeconds: d.spec.demand.windowSeconds });
      await reconciler.setScalers(definitions);
    },
    tick,
    run: (signal) => reconciler.run(signal, () => store.markSynced()),
    close: async () => {
      await reconciler.setScalers([]);
      await Promise.allSettled([api.close(), metricsServer?.close()]);
    },
  };
}

/** The sources report failures as values; the loop wants a rejection with the coded error. */
function adaptSource(scaler: ScalerDefinition, deps: ControllerRuntimeDeps): ObservationSource {
  const source = createObservationSource(scaler.spec, {
    fetch: deps.fetch,
    clockMs: deps.nowMs,
    ...(deps.resolverFor !== undefined ? { resolveEndpoints: deps.resolverFor(scaler) } : {}),
  });
  return {
    observe: async (nowSeconds, signal) => {
      const result = await source.observe(nowSeconds, signal);
      if (!result.ok) throw result.error;
      for (const warning of result.warnings)
        deps.logger.warn(warning, { scaler: `${scaler.namespace}/${scaler.name}` });
      return result.observation;
    },
  };
}
