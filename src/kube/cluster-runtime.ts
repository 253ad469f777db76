/**
 * @module Everything `tokenscaler controller` needs in a cluster, assembled from one KubeApi: the
 * scaler feed (list/watch -> Reconciler.setScalers), the replica reader (/scale + ready pods), pod
 * discovery for metrics.scrape.podSelector, the decision listeners that write to the cluster (status,
 * events, owned HPA, the spec.replicas fight detector), leader election, readiness and metrics.
 *
 * Every replica runs the feed and the reconcile loop and serves the metrics APIs from its own
 * decisions; only the leader's listeners write. Shutdown order (SIGTERM): stop ticking first, then
 * abort `run` (the feed stops, the Lease is released), then drain HTTP.
 */
import type { Registry } from 'prom-client';
import type { MaterialSource } from '../api/material.ts';
import type { ScalerDefinition } from '../config/tokenscaler-spec.ts';
import type { DecisionListener, Logger, ReplicaReader } from '../reconcile/ports.ts';
import type { EndpointResolver } from '../sources/observation-source.ts';
import type { BackoffPolicy } from './backoff.ts';
import {
  type ClusterAuthentication,
  readClusterAuthentication,
  withClusterCas,
} from './cluster-authentication.ts';
import { PodEndpointResolver } from './endpoint-resolver.ts';
import { EventRecorder, ScalerEvents } from './events.ts';
import { HpaManager } from './hpa-manager.ts';
import type { KubeApi } from './kube-api.ts';
import { KubeMetrics } from './kube-metrics.ts';
import { AlwaysLeader, LeaderElector, type LeaderState } from './leader-election.ts';
import { KubeReplicaReader } from './replica-reader.ts';
import { ReplicasFightDetector } from './replicas-fight.ts';
import { type FeedHealth, ScalerFeed } from './scaler-feed.ts';
import { StatusWriter } from './status-writer.ts';

export interface ClusterRuntimeOptions {
  /** Namespaces to watch (`--namespace`, repeatable or comma-separated); undefined or empty: all. */
  namespaces?: readonly string[] | undefined;
  /** This replica's name in the Lease and in Events (pod name plus a random suffix). */
  identity: string;
  leaderElection: {
    enabled: boolean;
    namespace: string;
    name: string;
    leaseDurationSeconds?: number;
    renewDeadlineSeconds?: number;
    retryPeriodSeconds?: number;
  };
  watchTimeoutSeconds?: number;
  resyncSeconds?: number;
  silenceSeconds?: number;
  backoff?: BackoffPolicy;
  /** Not ready when neither a list nor a watch event succeeded for this long (default 2 x resync). */
  staleAfterSeconds?: number;
}

export interface ClusterRuntimeDeps {
  api: KubeApi;
  logger: Logger;
  nowMs: () => number;
  random?: () => number;
  /** Where the Kubernetes metrics go (or call registerMetrics later); none when undefined. */
  registry?: Registry;
}

export interface ClusterReadiness {
  ready: boolean;
  /** Why not ready, or "ok". */
  reason: string;
  feed: FeedHealth;
  leader: { isLeader: boolean; holder: string | undefined; identity: string };
}

export interface ClusterRuntime {
  readonly feed: ScalerFeed;
  readonly leader: LeaderState;
  readonly replicaReader: ReplicaReader;
  /** Pod discovery for metrics.scrape.podSelector, one resolver for every scaler. */
  readonly resolveEndpoints: EndpointResolver;
  /** The same, bound to one scaler (for runtimes that build sources per scaler). */
  resolverFor(scaler: ScalerDefinition): EndpointResolver;
  /** Status writer, events, owned HPA, fight detector: add to the reconcile loop's listeners. */
  readonly listeners: readonly DecisionListener[];
  /**
   * Runs the feed (handing every change to `setScalers`) and leader election until `signal` aborts;
   * then releases the Lease. Resolves when both have stopped.
   */
  run(signal: AbortSignal, setScalers: (definitions: ScalerDefinition[]) => Promise<void>): Promise<void>;
  /** Registers the Kubernetes metrics on the controller's registry (once; later calls do nothing). */
  registerMetrics(registry: Registry): void;
  /** Resolves after the first successful list was handed to `setScalers`. */
  waitForSync(signal: AbortSignal): Promise<void>;
  readiness(): ClusterReadiness;
  /** The front-proxy and client CAs published by kube-apiserver (undefined when the ConfigMap is absent). */
  authentication(signal: AbortSignal): Promise<ClusterAuthentication | undefined>;
  /** Serving material whose missing CA files are filled from that ConfigMap. */
  servingMaterial(files: MaterialSource): MaterialSource;
}

export function createClusterRuntime(
  options: ClusterRuntimeOptions,
  deps: ClusterRuntimeDeps,
): ClusterRuntime {
  const { api, logger, nowMs } = deps;
  let handOver: ((definitions: ScalerDefinition[]) => Promise<void>) | undefined;
  const endpoints = new PodEndpointResolver(api);

  const elector = options.leaderElection.enabled
    ? new LeaderElector({
        api,
        namespace: options.leaderElection.namespace,
        name: options.leaderElection.name,
        identity: options.identity,
        ...(options.leaderElection.leaseDurationSeconds === undefined
          ? {}
          : { leaseDurationSeconds: options.leaderElection.leaseDurationSeconds }),
        ...(options.leaderElection.renewDeadlineSeconds === undefined
          ? {}
          : { renewDeadlineSeconds: options.leaderElection.renewDeadlineSeconds }),
        ...(options.leaderElection.retryPeriodSeconds === undefined
          ? {}
          : { retryPeriodSeconds: options.leaderElection.retryPeriodSeconds }),
        nowMs,
        logger,
        ...(deps.random === undefined ? {} : { random: deps.random }),
      })
    : undefined;
  const leader: LeaderState = elector ?? new AlwaysLeader(options.identity);

  const feed = new ScalerFeed({
    api,
    namespaces: options.namespaces,
    logger,
    nowMs,
    ...(deps.random === undefined ? {} : { random: deps.random }),
    ...(options.watchTimeoutSeconds === undefined
      ? {}
      : { watchTimeoutSeconds: options.watchTimeoutSeconds }),
    ...(options.resyncSeconds === undefined ? {} : { resyncSeconds: options.resyncSeconds }),
    ...(options.silenceSeconds === undefined ? {} : { silenceSeconds: options.silenceSeconds }),
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    onScalers: async (definitions) => {
      for (const d of definitions) endpoints.register(d);
      await handOver?.(definitions);
    },
    onInvalid: (object, message) => {
      const namespace = object.metadata.namespace ?? 'default';
      void recorder.record(
        {
          scaler: {
            namespace,
            name: object.metadata.name,
            ...(object.metadata.uid === undefined ? {} : { uid: object.metadata.uid }),
          },
          type: 'Warning',
          reason: 'InvalidSpec',
          action: 'Validate',
          note: `spec rejected, running on the last valid spec if any: ${message}`,
        },
        AbortSignal.timeout(10_000),
      );
    },
  });
  const lookup = (namespace: string, name: string) => feed.object(namespace, name);
  const recorder = new EventRecorder({ api, leader, nowMs, logger });
  const fights = new ReplicasFightDetector({ api, recorder, nowMs, logger });
  const hpas = new HpaManager({
    api,
    leader,
    recorder,
    logger,
    nowMs,
    exists: (namespace, name) => lookup(namespace, name) !== undefined,
  });
  let metrics: KubeMetrics | undefined;
  const registerMetrics = (registry: Registry) => {
    metrics ??= new KubeMetrics(registry, feed, leader);
  };
  if (deps.registry !== undefined) registerMetrics(deps.registry);
  const status = new StatusWriter({
    api,
    leader,
    lookup,
    hpaName: (scaler) => hpas.hpaName(scaler),
    contested: (namespace, name) => fights.contested(namespace, name),
    nowMs,
    logger,
    onWrite: (result) => metrics?.statusWrites.inc({ result }),
  });
  const events = new ScalerEvents(recorder, leader, lookup);
  const staleAfterMs = (options.staleAfterSeconds ?? 2 * (options.resyncSeconds ?? 600)) * 1000;

  return {
    feed,
    leader,
    replicaReader: new KubeReplicaReader(api),
    resolveEndpoints: endpoints.resolve,
    resolverFor: (scaler) => endpoints.resolverFor(scaler),
    // Fights first (the status of the same tick shows them), status last.
    listeners: [fights, events, hpas, status],
    async run(signal, setScalers) {
      handOver = setScalers;
      await Promise.all([feed.run(signal), elector?.run(signal)]);
    },
    waitForSync: (signal) => feed.waitForSync(signal),
    registerMetrics,
    readiness() {
      const health = feed.health();
      const newest = Math.max(health.lastListAtMs ?? 0, health.lastWatchEventAtMs ?? 0);
      const reason = !health.synced
        ? `TokenScalers not listed yet${health.lastError === undefined ? '' : `: ${health.lastError}`}`
        : nowMs() - newest > staleAfterMs
          ? `no successful list or watch for ${Math.round((nowMs() - newest) / 1000)}s${health.lastError === undefined ? '' : `: ${health.lastError}`}`
          : 'ok';
      return {
        ready: reason === 'ok',
        reason,
        feed: health,
        leader: { isLeader: leader.isLeader(), holder: leader.leader(), identity: leader.identity },
      };
    },
    authentication: (signal) => readClusterAuthentication(api, signal),
    servingMaterial: (files) => withClusterCas(files, api),
  };
}
