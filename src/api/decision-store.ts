/**
 * @module api/decision-store
 *
 * The narrow read interface the API serves from. The reconcile loop owns the writing side (it
 * publishes one decision per scaler per tick); the API only reads, from memory, so metric requests
 * never wait on Prometheus or the Kubernetes API (reference/external-metrics-contract.md §7.6: a
 * slow adapter delays every HPA in the cluster).
 */
import type { Decision } from '../core/decision.ts';

/** One configured TokenScaler as the API sees it. */
export interface PublishedScaler {
  namespace: string;
  name: string;
  /** Undefined until the loop has decided for this scaler once: the API answers 503, never a zero. */
  decision: Decision | undefined;
  /** The window behind `demandTokens` (spec.demand.windowSeconds), served as the item's `window`. */
  demandWindowSeconds?: number;
}

export interface DecisionStore {
  /** Undefined when no such scaler is configured (the API answers 404). */
  get(namespace: string, name: string): PublishedScaler | undefined;
  /** Every configured scaler, or those of one namespace; sorted by namespace, then name. */
  list(namespace?: string): readonly PublishedScaler[];
  /** True once the loop has completed its first pass over all scalers (drives /readyz). */
  synced(): boolean;
  /**
   * Optional change counter: a number that differs whenever anything `get` or `list` returns may
   * have changed (register, publish, remove). A store that has it also promises that an entry it
   * handed out never changes: a change hands out a new entry. The API then reuses serialised
   * answers while the version holds, and serialised items while the entry is the same; a store
   * without it gets every answer built afresh.
   */
  version?(): number;
}

/**
 * A map-backed store: the reconcile loop calls `register`/`publish`/`remove`/`markSynced`, the API
 * reads. Lists are cached per namespace and rebuilt only after a change, so a metric request costs
 * a map lookup and a filter over that namespace's scalers.
 */
export class InMemoryDecisionStore implements DecisionStore {
  private readonly byNamespace = new Map<string, Map<string, PublishedScaler>>();
  private readonly listCache = new Map<string, readonly PublishedScaler[]>();
  private allCache: readonly PublishedScaler[] | undefined;
  private isSynced = false;
  private changes = 0;

  get(namespace: string, name: string): PublishedScaler | undefined {
    return this.byNamespace.get(namespace)?.get(name);
  }

  list(namespace?: string): readonly PublishedScaler[] {
    if (namespace === undefined) {
      this.allCache ??= [...this.byNamespace.keys()].sort().flatMap((ns) => this.list(ns));
      return this.allCache;
    }
    const cached = this.listCache.get(namespace);
    if (cached !== undefined) return cached;
    const scalers = this.byNamespace.get(namespace);
    const sorted =
      scalers === undefined
        ? []
        : [...scalers.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.listCache.set(namespace, sorted);
    return sorted;
  }

  synced(): boolean {
    return this.isSynced;
  }

  /** Bumped by every register, publish and effective remove; answers cached before it are stale. */
  version(): number {
    return this.changes;
  }

  /** Declares a configured scaler (no decision yet); keeps an existing decision. */
  register(namespace: string, name: string, options: { demandWindowSeconds?: number } = {}): void {
    const existing = this.get(namespace, name);
    this.put({
      namespace,
      name,
      decision: existing?.decision,
      ...windowOf(options.demandWindowSeconds ?? existing?.demandWindowSeconds),
    });
  }

  publish(
    namespace: string,
    name: string,
    decision: Decision,
    options: { demandWindowSeconds?: number } = {},
  ): void {
    const existing = this.get(namespace, name);
    this.put({
      namespace,
      name,
      decision,
      ...windowOf(options.demandWindowSeconds ?? existing?.demandWindowSeconds),
    });
  }

  /** A scaler that was deleted: its metrics answer 404 from now on. */
  remove(namespace: string, name: string): boolean {
    const scalers = this.byNamespace.get(namespace);
    const removed = scalers?.delete(name) ?? false;
    if (scalers?.size === 0) this.byNamespace.delete(namespace);
    if (removed) this.invalidate(namespace);
    return removed;
  }

  markSynced(): void {
    this.isSynced = true;
  }

  private put(entry: PublishedScaler): void {
    let scalers = this.byNamespace.get(entry.namespace);
    if (scalers === undefined) {
      scalers = new Map();
      this.byNamespace.set(entry.namespace, scalers);
    }
    scalers.set(entry.name, Object.freeze(entry));
    this.invalidate(entry.namespace);
  }

  private invalidate(namespace: string): void {
    this.changes += 1;
    this.listCache.delete(namespace);
    this.allCache = undefined;
  }
}

function windowOf(seconds: number | undefined): { demandWindowSeconds?: number } {
  return seconds === undefined ? {} : { demandWindowSeconds: seconds };
}
