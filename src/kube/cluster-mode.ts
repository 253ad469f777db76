/**
 * @module `tokenscaler controller` without `--standalone`: the flags of cluster mode and the run
 * itself. TokenScalers come from the Kubernetes API (kubeconfig from --kubeconfig, KUBECONFIG or the
 * in-cluster service account); a `coordination.k8s.io/v1` Lease elects the replica that writes
 * (`--leader-elect`, default true; `--leader-elect=false` for a single replica); every replica
 * decides and serves the metrics APIs.
 *
 * Shutdown on SIGTERM, in this order: stop ticking, stop the feed and release the Lease (a follower
 * takes over at its next retry), then drain the HTTP servers.
 *
 * The controller runtime (reconcile loop, decision store, API server) is built by the caller, which
 * passes a `startRuntime` that adds the cluster's replica reader, listeners and pod discovery.
 */
import { randomUUID } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { Readiness } from '../api/app.ts';
import type { MaterialSource } from '../api/material.ts';
import type { CommandIo } from '../cli/command.ts';
import type { ScalerDefinition } from '../config/tokenscaler-spec.ts';
import { InvalidInputError } from '../errors.ts';
import type { DecisionListener, Logger, ReplicaReader } from '../reconcile/ports.ts';
import type { EndpointResolver } from '../sources/observation-source.ts';
import { ClientNodeKubeApi } from './client-node-api.ts';
import { createClusterRuntime } from './cluster-runtime.ts';
import { loadKubeConfig } from './kube-config.ts';

export const CLUSTER_FLAG_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', multiple: true },
  'leader-elect': { type: 'string' },
  'leader-elect-lease-duration': { type: 'string' },
  'leader-elect-renew-deadline': { type: 'string' },
  'leader-elect-retry-period': { type: 'string' },
  'leader-elect-resource-name': { type: 'string' },
  'leader-elect-resource-namespace': { type: 'string' },
} as const;

export const CLUSTER_FLAGS_HELP = `cluster mode (without --standalone; names as kube-controller-manager's):
  --kubeconfig PATH                          default: $KUBECONFIG, else the in-cluster service account
  --context NAME                             kubeconfig context
  --namespace NS                             watch only these namespaces (repeat or comma-separate; default all)
  --leader-elect[=true|false]                elect one writer with a Lease (default true)
  --leader-elect-lease-duration DURATION     default 15s
  --leader-elect-renew-deadline DURATION     default 10s
  --leader-elect-retry-period DURATION       default 2s
  --leader-elect-resource-name NAME          the Lease (default tokenscaler-controller)
  --leader-elect-resource-namespace NS       default: $POD_NAMESPACE, else the context's, else default
`;

export interface ClusterFlagValues {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  namespace?: string[] | undefined;
  'leader-elect'?: string | undefined;
  'leader-elect-lease-duration'?: string | undefined;
  'leader-elect-renew-deadline'?: string | undefined;
  'leader-elect-retry-period'?: string | undefined;
  'leader-elect-resource-name'?: string | undefined;
  'leader-elect-resource-namespace'?: string | undefined;
}

/** `--leader-elect` alone means true; node's parseArgs needs a value for a flag that also takes `=false`. */
export function normalizeClusterArgs(args: readonly string[]): string[] {
  return args.map((a) => (a === '--leader-elect' ? '--leader-elect=true' : a));
}

/** What the cluster adds to the controller runtime. */
export interface ClusterRuntimeParts {
  replicas: ReplicaReader;
  listeners: readonly DecisionListener[];
  resolverFor: (scaler: ScalerDefinition) => EndpointResolver;
  /** Fills the CA files no flag gives from kube-system/extension-apiserver-authentication. */
  servingMaterial: (files: MaterialSource) => MaterialSource;
  /** /readyz fails while list/watch is not healthy. */
  readiness: () => Readiness;
}

/** The part of the controller runtime cluster mode drives. */
export interface StartedRuntime {
  readonly registry: Registry;
  readonly api: { readonly url: string };
  readonly metricsServer: { readonly url: string } | undefined;
  setScalers(definitions: readonly ScalerDefinition[]): Promise<void>;
  run(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export async function runInCluster(
  values: ClusterFlagValues,
  io: CommandIo,
  deps: { logger: Logger; startRuntime: (parts: ClusterRuntimeParts) => Promise<StartedRuntime> },
): Promise<number> {
  const { logger } = deps;
  const leaderElect = parseBoolFlag('leader-elect', values['leader-elect'] ?? 'true');
  const leaseDurationSeconds =
    parseDurationFlag('leader-elect-lease-duration', values['leader-elect-lease-duration']) ?? 15;
  const renewDeadlineSeconds =
    parseDurationFlag('leader-elect-renew-deadline', values['leader-elect-renew-deadline']) ?? 10;
  const retryPeriodSeconds =
    parseDurationFlag('leader-elect-retry-period', values['leader-elect-retry-period']) ?? 2;
  if (!(leaseDurationSeconds > renewDeadlineSeconds && renewDeadlineSeconds > retryPeriodSeconds))
    throw new InvalidInputError(
      '--leader-elect-lease-duration',
      `lease ${leaseDurationSeconds}s, renew deadline ${renewDeadlineSeconds}s and retry period ${retryPeriodSeconds}s are not allowed; the lease must exceed the renew deadline, which must exceed the retry period`,
    );
  const namespaces = (values.namespace ?? [])
    .flatMap((n) => n.split(','))
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const {
    config,
    namespace: contextNamespace,
    origin,
  } = loadKubeConfig({
    kubeconfigPath: values.kubeconfig,
    context: values.context,
    env: io.env,
  });
  const api = new ClientNodeKubeApi(config);
  // client-go's identity: the host (pod) name plus a unique suffix, so a restarted pod is a new candidate.
  const identity = `${io.env.POD_NAME ?? io.env.HOSTNAME ?? 'tokenscaler'}_${randomUUID().slice(0, 8)}`;
  const cluster = createClusterRuntime(
    {
      identity,
      namespaces,
      leaderElection: {
        enabled: leaderElect,
        namespace:
          values['leader-elect-resource-namespace'] ?? io.env.POD_NAMESPACE ?? contextNamespace ?? 'default',
        name: values['leader-elect-resource-name'] ?? 'tokenscaler-controller',
        leaseDurationSeconds,
        renewDeadlineSeconds,
        retryPeriodSeconds,
      },
    },
    { api, logger, nowMs: io.nowMs },
  );
  const runtime = await deps.startRuntime({
    replicas: cluster.replicaReader,
    listeners: cluster.listeners,
    resolverFor: (scaler) => cluster.resolverFor(scaler),
    servingMaterial: (files) => cluster.servingMaterial(files),
    readiness: () => {
      const health = cluster.readiness();
      return health.ready ? { ready: true } : { ready: false, reason: health.reason };
    },
  });
  cluster.registerMetrics(runtime.registry);
  const stopCluster = new AbortController();
  const clusterDone = cluster.run(stopCluster.signal, (definitions) => runtime.setScalers(definitions));
  logger.info('controller started', {
    mode: 'cluster',
    kubeconfig: origin,
    namespaces: namespaces.length === 0 ? 'all' : namespaces,
    leaderElection: leaderElect ? { identity, leaseDurationSeconds } : false,
    api: runtime.api.url,
    metrics: runtime.metricsServer?.url,
  });
  await cluster.waitForSync(io.signal);
  if (!io.signal.aborted)
    logger.info('TokenScalers listed; reconciling', { scalers: cluster.readiness().feed.relists });
  await runtime.run(io.signal);
  logger.info('shutting down: stopped ticking; releasing the leader lease');
  stopCluster.abort();
  await clusterDone;
  logger.info('draining the API server');
  await runtime.close();
  return 0;
}

function parseBoolFlag(flag: string, raw: string): boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new InvalidInputError(`--${flag}`, `${JSON.stringify(raw)} is not allowed; expected true or false`);
}

/** "15s", "1m30s", "500ms" or plain seconds, as Go durations on kube-controller-manager's flags. */
export function parseDurationFlag(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text || !(text.length > 0))
    throw new InvalidInputError(
      `--${flag}`,
      `${JSON.stringify(raw)} is not allowed; expected a duration such as 15s, 1m30s or 500ms`,
    );
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 } as const;
  const seconds = parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2] as keyof typeof unit], 0);
  if (!(seconds > 0))
    throw new InvalidInputError(`--${flag}`, `${JSON.stringify(raw)} is not allowed; it must be above 0`);
  return seconds;
}
