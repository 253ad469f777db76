/**
 * @module The controller's own metrics about its Kubernetes connection, on the registry the composition
 * root passes in: freshness of list/watch (the readiness signal of code-style anchors principle 9),
 * watch restarts, leadership and status writes. Label sets are fixed.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { LeaderState } from './leader-election.ts';
import type { ScalerFeed } from './scaler-feed.ts';

export class KubeMetrics {
  readonly statusWrites: Counter<'result'>;

  constructor(registry: Registry, feed: ScalerFeed, leader: LeaderState) {
    const registers = [registry];
    new Gauge({
      name: 'tokenscaler_kube_last_list_timestamp_seconds',
      help: 'When the TokenScaler list last succeeded (the stalest watched namespace), Unix seconds.',
      registers,
      collect() {
        const at = feed.health().lastListAtMs;
        if (at !== undefined) this.set(at / 1000);
      },
    });
    new Gauge({
      name: 'tokenscaler_kube_last_watch_event_timestamp_seconds',
      help: 'When a TokenScaler watch last delivered an event or bookmark, Unix seconds.',
      registers,
      collect() {
        const at = feed.health().lastWatchEventAtMs;
        if (at !== undefined) this.set(at / 1000);
      },
    });
    new Gauge({
      name: 'tokenscaler_kube_watch_failures',
      help: 'Consecutive failed list/watch attempts (0 when healthy).',
      registers,
      collect() {
        this.set(feed.health().consecutiveFailures);
      },
    });
    new Gauge({
      name: 'tokenscaler_kube_watch_restarts',
      help: 'Watch restarts since start, by cause.',
      labelNames: ['cause'],
      registers,
      collect() {
        const h = feed.health();
        this.set({ cause: 'relist' }, h.relists);
        this.set({ cause: 'rewatch' }, h.watchRestarts);
        this.set({ cause: 'watchdog' }, h.watchdogCuts);
      },
    });
    new Gauge({
      name: 'tokenscaler_leader',
      help: '1 when this replica holds the leader Lease (and writes status, events and HPAs), else 0.',
      registers,
      collect() {
        this.set(leader.isLeader() ? 1 : 0);
      },
    });
    this.statusWrites = new Counter({
      name: 'tokenscaler_kube_status_writes_total',
      help: 'Status updates of TokenScalers by result: written, skipped (nothing changed), conflict (409, retried), failed.',
      labelNames: ['result'],
      registers,
    });
  }
}
