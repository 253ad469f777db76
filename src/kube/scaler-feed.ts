/**
 * @module The scaler feed: keeps the reconcile loop's set of scalers equal to the TokenScalers in the
 * API server, by list + watch, and never trusts the watch to run forever (client-node #596, #958;
 * Pepr ADR-0015; code-style anchors principle 9).
 *
 * - Level-triggered: every change (or relist) hands the whole current set to `onScalers`
 *   (Reconciler.setScalers, which is idempotent per generation). Decisions come from the loop's own
 *   tick; a missed watch event delays a spec change until the next relist, never loses it.
 * - Restart on any error, with exponential backoff and jitter; relist on 410 Gone; relist after
 *   three failed watches in a row and every `resyncSeconds` regardless.
 * - A watchdog cuts a watch that delivers nothing (not even a bookmark) for `silenceSeconds`.
 * - Health (last successful list, last watch activity, consecutive failures) feeds readiness and
 *   the controller's metrics.
 * - A spec that fails the zod schema (the API server's CRD validation is the first line; this is the
 *   second, for clusters without CEL) is reported through `onInvalid` and the scaler keeps its last
 *   valid spec: a bad edit never deletes an owned HPA.
 */

import { describeIssues } from '../config/format-issues.ts';
import { type ScalerDefinition, tokenScalerSchema } from '../config/tokenscaler-spec.ts';
import type { Logger } from '../reconcile/ports.ts';
import { type BackoffPolicy, backoffDelayMs, DEFAULT_BACKOFF, pause } from './backoff.ts';
import { hasCode, KubeApiError } from './errors.ts';
import type { KubeApi, KubeObject, WatchEvent } from './kube-api.ts';

export interface ScalerFeedOptions {
  api: KubeApi;
  /** Namespaces to watch; undefined watches all (one cluster-wide list/watch). */
  namespaces: readonly string[] | undefined;
  onScalers: (definitions: ScalerDefinition[]) => Promise<void> | void;
  /** A TokenScaler whose spec does not parse; called once per object generation. */
  onInvalid?: (object: KubeObject, message: string) => void;
  logger: Logger;
  nowMs: () => number;
  random?: () => number;
  /** Server-side timeout of one watch; each watch draws from [t, 2t) as client-go does (default 300). */
  watchTimeoutSeconds?: number;
  /** Full relist this often even when watches are healthy (default 600). */
  resyncSeconds?: number;
  /** A watch silent this long is cut and restarted (default 2 x watchTimeoutSeconds + 30). */
  silenceSeconds?: number;
  backoff?: BackoffPolicy;
}

export interface FeedHealth {
  /** Every scope has listed successfully at least once. */
  synced: boolean;
  /** Oldest of the scopes' last successful lists (Unix ms): the feed is as fresh as its stalest scope. */
  lastListAtMs: number | undefined;
  /** Newest watch activity (event or bookmark) of any scope. */
  lastWatchEventAtMs: number | undefined;
  consecutiveFailures: number;
  lastError: string | undefined;
  /** Counters since start. */
  relists: number;
  watchRestarts: number;
  watchdogCuts: number;
}

interface Scope {
  namespace: string | undefined;
  objects: Map<string, KubeObject>;
  lastListAtMs: number | undefined;
  lastActivityAtMs: number | undefined;
  failures: number;
}

const key = (namespace: string, name: string) => `${namespace}/${name}`;

export class ScalerFeed {
  readonly #options: ScalerFeedOptions;
  readonly #scopes: Scope[];
  readonly #valid = new Map<string, { uid: string | undefined; definition: ScalerDefinition }>();
  readonly #reportedInvalid = new Set<string>();
  #publishing: Promise<void> = Promise.resolve();
  #dirty = false;
  #inFlight = false;
  #relists = 0;
  #watchRestarts = 0;
  #watchdogCuts = 0;
  #lastError: string | undefined;
  readonly #syncWaiters: Array<() => void> = [];

  constructor(options: ScalerFeedOptions) {
    this.#options = options;
    const namespaces =
      options.namespaces === undefined || options.namespaces.length === 0
        ? [undefined]
        : [...new Set(options.namespaces)];
    this.#scopes = namespaces.map((namespace) => ({
      namespace,
      objects: new Map(),
      lastListAtMs: undefined,
      lastActivityAtMs: undefined,
      failures: 0,
    }));
  }

  /** Runs every scope's list/watch loop until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all(this.#scopes.map((scope) => this.#runScope(scope, signal)));
    await this.#publishing;
  }

  /** Resolves once every scope has listed and the first set of scalers was handed over. */
  waitForSync(signal: AbortSignal): Promise<void> {
    if (this.health().synced) return this.#publishing;
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#syncWaiters.push(() => void this.#publishing.then(done));
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** The latest object as the API server last showed it (status included), for the status writer. */
  object(namespace: string, name: string): KubeObject | undefined {
    for (const scope of this.#scopes) {
      const found = scope.objects.get(key(namespace, name));
      if (found !== undefined) return found;
    }
    return undefined;
  }

  health(): FeedHealth {
    const lists = this.#scopes.map((s) => s.lastListAtMs);
    const activity = this.#scopes.map((s) => s.lastActivityAtMs).filter((t): t is number => t !== undefined);
    return {
      synced: lists.every((t) => t !== undefined),
      lastListAtMs: lists.some((t) => t === undefined) ? undefined : Math.min(...(lists as number[])),
      lastWatchEventAtMs: activity.length === 0 ? undefined : Math.max(...activity),
      consecutiveFailures: Math.max(...this.#scopes.map((s) => s.failures)),
      lastError: this.#lastError,
      relists: this.#relists,
      watchRestarts: this.#watchRestarts,
      watchdogCuts: this.#watchdogCuts,
    };
  }

  async #runScope(scope: Scope, signal: AbortSignal): Promise<void> {
    const { api, logger, nowMs } = this.#options;
    const random = this.#options.random ?? Math.random;
    const backoff = this.#options.backoff ?? DEFAULT_BACKOFF;
    const watchTimeout = this.#options.watchTimeoutSeconds ?? 300;
    const resyncMs = (this.#options.resyncSeconds ?? 600) * 1000;
    const silenceMs = (this.#options.silenceSeconds ?? watchTimeout * 2 + 30) * 1000;
    const where = scope.namespace ?? 'all namespaces';
    let resourceVersion: string | undefined;
    let failedWatches = 0;

    while (!signal.aborted) {
      try {
        if (
          resourceVersion === undefined ||
          failedWatches >= 3 ||
          (scope.lastListAtMs !== undefined && nowMs() - scope.lastListAtMs >= resyncMs)
        ) {
          const list = await api.listTokenScalers(scope.namespace, signal);
          scope.objects = new Map(
            list.items.map((o) => [key(o.metadata.namespace ?? '', o.metadata.name), o]),
          );
          resourceVersion = list.resourceVersion;
          scope.lastListAtMs = nowMs();
          scope.lastActivityAtMs = nowMs();
          failedWatches = 0;
          this.#relists += 1;
          this.#publish();
          this.#notifySynced();
        }
        const watchStartedMs = nowMs();
        let events = 0;
        const watchdog = new AbortController();
        const timer = setInterval(
          () => {
            if (nowMs() - (scope.lastActivityAtMs ?? watchStartedMs) > silenceMs) {
              this.#watchdogCuts += 1;
              logger.warn('watch went silent; restarting it', {
                scope: where,
                silenceSeconds: silenceMs / 1000,
              });
              watchdog.abort();
            }
          },
          Math.max(100, Math.min(5000, silenceMs / 4)),
        );
        scope.lastActivityAtMs = nowMs();
        const timeoutSeconds = Math.floor(watchTimeout * (1 + random()));
        // Also stop the watch at the next resync, so a healthy stream cannot postpone the relist.
        const untilResync = Math.max(
          1,
          Math.ceil((resyncMs - (nowMs() - (scope.lastListAtMs ?? nowMs()))) / 1000),
        );
        try {
          await api.watchTokenScalers(
            scope.namespace,
            {
              resourceVersion: resourceVersion as string,
              timeoutSeconds: Math.min(timeoutSeconds, untilResync),
            },
            (event) => {
              scope.lastActivityAtMs = nowMs();
              events += 1;
              if (event.resourceVersion !== '') resourceVersion = event.resourceVersion;
              if (this.#apply(scope, event)) this.#publish();
            },
            AbortSignal.any([signal, watchdog.signal]),
          );
        } finally {
          clearInterval(timer);
        }
        if (signal.aborted) break;
        this.#watchRestarts += 1;
        if (watchdog.signal.aborted) {
          failedWatches += 1;
          continue;
        }
        // A stream that ends at once without a word is a failure in disguise: back off, not spin.
        if (events === 0 && nowMs() - watchStartedMs < 1000)
          throw new KubeApiError('KUBE_UNAVAILABLE', 'watch ended immediately');
        scope.failures = 0;
        failedWatches = 0;
      } catch (error) {
        if (signal.aborted) break;
        const message = error instanceof Error ? error.message : String(error);
        this.#lastError = message;
        if (hasCode(error, 'KUBE_GONE')) {
          // Expected after a compaction or a long disconnect: relist at once (backoff only if it repeats).
          logger.info('watch resource version expired; relisting', { scope: where });
          resourceVersion = undefined;
          scope.failures += 1;
          if (scope.failures > 1) await pause(backoffDelayMs(scope.failures - 2, backoff, random), signal);
          continue;
        }
        scope.failures += 1;
        failedWatches += 1;
        const delayMs = backoffDelayMs(scope.failures - 1, backoff, random);
        logger.warn('list/watch of TokenScalers failed; retrying', {
          scope: where,
          error: message,
          code: error instanceof KubeApiError ? error.code : undefined,
          attempt: scope.failures,
          retryInMs: delayMs,
        });
        await pause(delayMs, signal);
      }
    }
  }

  /** Applies a watch event to the scope's cache; true when the set of objects changed. */
  #apply(scope: Scope, event: WatchEvent): boolean {
    if (event.type === 'BOOKMARK') return false;
    const object = event.object;
    const k = key(object.metadata.namespace ?? '', object.metadata.name);
    if (event.type === 'DELETED') return scope.objects.delete(k);
    const before = scope.objects.get(k);
    // Never go back in time: a replayed event older than what a relist showed is ignored.
    if (
      before !== undefined &&
      Number(before.metadata.resourceVersion) > Number(object.metadata.resourceVersion)
    )
      return false;
    scope.objects.set(k, object);
    return true;
  }

  #notifySynced(): void {
    if (!this.health().synced) return;
    for (const waiter of this.#syncWaiters.splice(0)) waiter();
  }

  /** Hands the current set over; coalesces changes that arrive while a hand-over runs. */
  #publish(): void {
    this.#dirty = true;
    if (this.#inFlight) return;
    this.#inFlight = true;
    this.#publishing = (async () => {
      while (this.#dirty) {
        this.#dirty = false;
        try {
          await this.#options.onScalers(this.#definitions());
        } catch (error) {
          this.#options.logger.error('handing scalers to the reconcile loop failed', {
            error: error instanceof Error ? error.message : String(error),
          });
        }
      }
      this.#inFlight = false;
    })();
  }

  #definitions(): ScalerDefinition[] {
    const result: ScalerDefinition[] = [];
    const present = new Set<string>();
    for (const scope of this.#scopes) {
      for (const [k, object] of scope.objects) {
        present.add(k);
        const definition = this.#definitionOf(k, object);
        if (definition !== undefined) result.push(definition);
      }
    }
    for (const k of this.#valid.keys()) if (!present.has(k)) this.#valid.delete(k);
    return result.sort((a, b) => key(a.namespace, a.name).localeCompare(key(b.namespace, b.name)));
  }

  #definitionOf(k: string, object: KubeObject): ScalerDefinition | undefined {
    const parsed = tokenScalerSchema.safeParse(object);
    const uid = object.metadata.uid;
    if (parsed.success) {
      const definition: ScalerDefinition = {
        namespace: parsed.data.metadata.namespace,
        name: parsed.data.metadata.name,
        spec: parsed.data.spec,
        generation: object.metadata.generation ?? object.metadata.resourceVersion ?? 0,
        ...(uid === undefined ? {} : { uid }),
      };
      this.#valid.set(k, { uid, definition });
      return definition;
    }
    const reportKey = `${k}@${uid ?? ''}#${object.metadata.generation ?? object.metadata.resourceVersion ?? ''}`;
    if (!this.#reportedInvalid.has(reportKey)) {
      this.#reportedInvalid.add(reportKey);
      const message = describeIssues(parsed.error.issues, object);
      this.#options.logger.warn('TokenScaler spec is invalid; keeping its last valid spec', {
        scaler: k,
        error: message,
      });
      this.#options.onInvalid?.(object, message);
    }
    const last = this.#valid.get(k);
    return last !== undefined && last.uid === uid ? last.definition : undefined;
  }
}
