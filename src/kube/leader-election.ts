/**
 * @module Leader election with a `coordination.k8s.io/v1` Lease, following client-go's leaderelection
 * package (the defaults are its defaults: lease 15 s, renew deadline 10 s, retry 2 s).
 *
 * - Every replica computes; only the leader writes (status, events, HPAs). `isLeader()` is false as
 *   soon as the leader has gone `renewDeadlineSeconds` without a successful renewal, which is shorter
 *   than the lease: by the time a follower may take the Lease, the old leader has stopped writing.
 * - Followers never compare their clock with the leader's: they note when they last saw the Lease
 *   record change and take over when it has not changed for `leaseDurationSeconds` (clock skew
 *   between nodes cannot cause two leaders).
 * - Every write is a compare-and-swap on the Lease's resourceVersion, so two candidates racing for
 *   an expired Lease cannot both win (the loser gets 409).
 * - On shutdown the leader releases the Lease (empty holder), so a follower takes over at its next
 *   retry instead of waiting out the lease (client-go ReleaseOnCancel).
 *
 * Failover after a crash: at most leaseDuration + retryPeriod after the leader's last renewal
 * (15 + 2 = 17 s with the defaults).
 */
import type { Logger } from '../reconcile/ports.ts';
import { pause } from './backoff.ts';
import { hasCode } from './errors.ts';
import type { KubeApi, LeaseRecord } from './kube-api.ts';

export interface LeaderState {
  /** True while this replica holds the Lease and renewed it within the renew deadline. */
  isLeader(): boolean;
  readonly identity: string;
  /** The holder as last seen (this replica or another), undefined when none. */
  leader(): string | undefined;
}

/** Leader election turned off (`--leader-elect=false`): this replica always writes. */
export class AlwaysLeader implements LeaderState {
  readonly identity: string;
  constructor(identity: string) {
    this.identity = identity;
  }
  isLeader(): boolean {
    return true;
  }
  leader(): string {
    return this.identity;
  }
}

export interface LeaderElectionOptions {
  api: KubeApi;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
  nowMs: () => number;
  logger: Logger;
  random?: () => number;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
}

export class LeaderElector implements LeaderState {
  readonly identity: string;
  readonly #options: LeaderElectionOptions;
  readonly #leaseMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryMs: number;
  #leading = false;
  #lastRenewMs = 0;
  #lease: LeaseRecord | undefined;
  #observed: { key: string; atMs: number } | undefined;
  #holder: string | undefined;

  constructor(options: LeaderElectionOptions) {
    this.#options = options;
    this.identity = options.identity;
    this.#leaseMs = Math.round((options.leaseDurationSeconds ?? 15) * 1000);
    this.#renewDeadlineMs = Math.round((options.renewDeadlineSeconds ?? 10) * 1000);
    this.#retryMs = Math.round((options.retryPeriodSeconds ?? 2) * 1000);
    if (!(this.#leaseMs > this.#renewDeadlineMs && this.#renewDeadlineMs > this.#retryMs))
      throw new RangeError('leader election needs leaseDuration > renewDeadline > retryPeriod');
  }

  isLeader(): boolean {
    return this.#leading && this.#options.nowMs() - this.#lastRenewMs < this.#renewDeadlineMs;
  }

  leader(): string | undefined {
    return this.#holder;
  }

  /** Campaigns and renews until the signal aborts, then releases the Lease if it holds it. */
  async run(signal: AbortSignal): Promise<void> {
    const random = this.#options.random ?? Math.random;
    while (!signal.aborted) {
      await this.#step(signal);
      // Followers add jitter so candidates do not hit the Lease in lockstep (client-go JitterFactor 1.2).
      await pause(this.#leading ? this.#retryMs : this.#retryMs * (1 + 0.2 * random()), signal);
    }
    await this.release();
  }

  /** Gives up leadership and empties the Lease so a follower can take it at once. */
  async release(): Promise<void> {
    const wasLeading = this.#leading;
    this.#setLeading(false);
    if (!wasLeading || this.#lease === undefined || this.#lease.holderIdentity !== this.identity) return;
    try {
      const now = this.#options.nowMs();
      this.#lease = await this.#options.api.replaceLease(
        {
          ...this.#lease,
          holderIdentity: undefined,
          leaseDurationSeconds: 1,
          renewTimeMs: now,
          acquireTimeMs: now,
        },
        AbortSignal.timeout(Math.round(this.#retryMs * 2)),
      );
      this.#holder = undefined;
      this.#options.logger.info('released the leader lease', { lease: this.#leaseName() });
    } catch (error) {
      this.#options.logger.warn('releasing the leader lease failed; it expires on its own', {
        lease: this.#leaseName(),
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  async #step(signal: AbortSignal): Promise<void> {
    const { api, namespace, name, nowMs, logger } = this.#options;
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(Math.round(this.#retryMs * 2))]);
    try {
      const now = nowMs();
      if (this.#leading && this.#lease !== undefined) {
        this.#lease = await api.replaceLease(
          { ...this.#lease, renewTimeMs: now, holderIdentity: this.identity },
          deadline,
        );
        this.#lastRenewMs = now;
        this.#holder = this.identity;
        return;
      }
      const current = await api.getLease(namespace, name, deadline);
      // Lease.spec.leaseDurationSeconds is an int32; followers use their own configured duration anyway.
      const leaseDurationSeconds = Math.max(1, Math.ceil(this.#leaseMs / 1000));
      if (current === undefined) {
        this.#lease = await api.createLease(
          {
            namespace,
            name,
            holderIdentity: this.identity,
            leaseDurationSeconds,
            acquireTimeMs: now,
            renewTimeMs: now,
            leaseTransitions: 0,
          },
          deadline,
        );
        this.#won(now);
        return;
      }
      const key = `${current.holderIdentity ?? ''}|${current.renewTimeMs ?? ''}|${current.resourceVersion ?? ''}`;
      if (this.#observed?.key !== key) this.#observed = { key, atMs: now };
      this.#holder = current.holderIdentity;
      const heldByOther = current.holderIdentity !== undefined && current.holderIdentity !== this.identity;
      if (heldByOther && now - this.#observed.atMs < this.#leaseMs) {
        this.#lease = current;
        return;
      }
      this.#lease = await api.replaceLease(
        {
          ...current,
          holderIdentity: this.identity,
          leaseDurationSeconds,
          acquireTimeMs: now,
          renewTimeMs: now,
          leaseTransitions: current.leaseTransitions + (current.holderIdentity === this.identity ? 0 : 1),
        },
        deadline,
      );
      if (heldByOther)
        logger.info('took over an expired leader lease', {
          lease: this.#leaseName(),
          from: current.holderIdentity,
        });
      this.#won(now);
    } catch (error) {
      if (hasCode(error, 'KUBE_CONFLICT') || hasCode(error, 'KUBE_ALREADY_EXISTS')) {
        // Another candidate won the race (or renewed first); read the Lease again next round.
        if (this.#leading) this.#lease = undefined;
      } else if (!signal.aborted) {
        logger.warn('leader election: lease request failed', {
          lease: this.#leaseName(),
          error: error instanceof Error ? error.message : String(error),
        });
      }
      if (
        this.#leading &&
        (this.#lease === undefined || nowMs() - this.#lastRenewMs >= this.#renewDeadlineMs)
      ) {
        logger.warn('lost the leader lease: could not renew within the renew deadline', {
          lease: this.#leaseName(),
          renewDeadlineSeconds: this.#renewDeadlineMs / 1000,
        });
        this.#setLeading(false);
      }
    }
  }

  #won(now: number): void {
    this.#lastRenewMs = now;
    this.#holder = this.identity;
    if (!this.#leading)
      this.#options.logger.info('became the leader', { lease: this.#leaseName(), identity: this.identity });
    this.#setLeading(true);
  }

  #setLeading(leading: boolean): void {
    if (this.#leading === leading) return;
    this.#leading = leading;
    if (leading) this.#options.onStartedLeading?.();
    else this.#options.onStoppedLeading?.();
  }

  #leaseName(): string {
    return `${this.#options.namespace}/${this.#options.name}`;
  }
}
