/**
 * A controller process for the leader-election test: the real client-node adapter, the cluster
 * runtime and the reconcile loop, with a fixed metrics source (no engines needed). Reads KUBECONFIG
 * and IDENTITY from the environment, ticks every TICK_MS, and prints one JSON line per tick:
 * {identity, leader, holder, atMs}. SIGTERM stops ticking, releases the Lease and exits 0.
 *
 *   KUBECONFIG=... IDENTITY=a node test/support/fake-apiserver-controller-process.ts
 */
import { ClientNodeKubeApi } from '../../src/kube/client-node-api.ts';
import { createClusterRuntime } from '../../src/kube/cluster-runtime.ts';
import { loadKubeConfig } from '../../src/kube/kube-config.ts';
import { Reconciler } from '../../src/reconcile/reconciler.ts';

const identity = process.env.IDENTITY ?? `p${process.pid}`;
const tickMs = Number(process.env.TICK_MS ?? '300');
const log = (level: string) => (message: string, fields?: Record<string, unknown>) =>
  void process.stderr.write(`${JSON.stringify({ level, message, ...fields })}\n`);
const quiet = { info: () => undefined, warn: log('warn'), error: log('error') };
const { config } = loadKubeConfig({ env: process.env });
const api = new ClientNodeKubeApi(config, { requestTimeoutSeconds: 2 });
const cluster = createClusterRuntime(
  {
    identity,
    namespaces: ['inference'],
    leaderElection: {
      enabled: true,
      namespace: 'inference',
      name: 'tokenscaler-controller',
      leaseDurationSeconds: Number(process.env.LEASE_SECONDS ?? '3'),
      renewDeadlineSeconds: Number(process.env.RENEW_SECONDS ?? '2'),
      retryPeriodSeconds: Number(process.env.RETRY_SECONDS ?? '0.5'),
    },
    watchTimeoutSeconds: 30,
  },
  { api, logger: quiet, nowMs: Date.now },
);
const reconciler = new Reconciler({
  sources: () => ({
    observe: async (nowSeconds) => ({
      observedAtSeconds: nowSeconds,
      podsReporting: 2,
      inflightTokens: 100_000,
      provenance: {},
    }),
  }),
  replicas: cluster.replicaReader,
  listeners: cluster.listeners,
  logger: quiet,
  nowMs: Date.now,
  tickSeconds: tickMs / 1000,
});

const stopTicking = new AbortController();
const stopCluster = new AbortController();
process.once('SIGTERM', () => stopTicking.abort());
const clusterDone = cluster.run(stopCluster.signal, (definitions) => reconciler.setScalers(definitions));
await cluster.waitForSync(stopTicking.signal);
const report = setInterval(() => {
  process.stdout.write(
    `${JSON.stringify({ identity, leader: cluster.leader.isLeader(), holder: cluster.leader.leader() ?? null, scalers: reconciler.list().length, ticks: reconciler.progress.ticks, atMs: Date.now() })}\n`,
  );
}, tickMs);
await reconciler.run(stopTicking.signal);
clearInterval(report);
stopCluster.abort();
await clusterDone;
process.stdout.write(`${JSON.stringify({ identity, stopped: true })}\n`);
