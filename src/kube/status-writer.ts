/**
 * @module Writes each TokenScaler's status once per tick (leader only): the whole status is computed
 * in memory (src/kube/scaler-status.ts), compared with what is stored, and sent as one merge patch of
 * the status subresource only when a reader would see a difference (KEDA #7610 replaced four separate
 * status writers with exactly this). A 409 re-reads the object and recomputes from what the server
 * holds, up to three times.
 */
import type { DecisionListener, Logger, ScalerDefinition } from '../reconcile/ports.ts';
import type { ScalerState } from '../reconcile/scaler-state.ts';
import { hasCode } from './errors.ts';
import type { KubeApi, KubeObject } from './kube-api.ts';
import type { LeaderState } from './leader-election.ts';
import {
  computeStatus,
  parseStoredStatus,
  type StatusContext,
  statusChanged,
  statusPatch,
  type TokenScalerStatus,
} from './scaler-status.ts';

export interface StatusWriterOptions {
  api: KubeApi;
  leader: LeaderState;
  /** The object as the watch last delivered it (status included), so restarts do not rewrite equal status. */
  lookup: (namespace: string, name: string) => KubeObject | undefined;
  hpaName: (scaler: ScalerDefinition) => string | undefined;
  contested: (namespace: string, name: string) => { message: string } | undefined;
  nowMs: () => number;
  logger: Logger;
  onWrite?: (result: 'written' | 'skipped' | 'conflict' | 'failed') => void;
}

export class StatusWriter implements DecisionListener {
  readonly #options: StatusWriterOptions;
  readonly #written = new Map<string, TokenScalerStatus>();

  constructor(options: StatusWriterOptions) {
    this.#options = options;
  }

  async onDecision(state: ScalerState, signal: AbortSignal): Promise<void> {
    const { api, leader, lookup, logger, onWrite } = this.#options;
    const { scaler } = state;
    const k = `${scaler.namespace}/${scaler.name}`;
    if (!leader.isLeader()) {
      // A follower's memory of what it wrote goes stale; start from the server's status when leading again.
      this.#written.delete(k);
      return;
    }
    let object = lookup(scaler.namespace, scaler.name);
    let previous = this.#newest(this.#written.get(k), object);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const status = computeStatus(state, this.#context(state, object, previous));
      if (!statusChanged(previous, status)) {
        onWrite?.('skipped');
        return;
      }
      try {
        const stored = await api.patchTokenScalerStatus(
          scaler.namespace,
          scaler.name,
          statusPatch(previous, status),
          signal,
        );
        this.#written.set(k, parseStoredStatus(stored.status) ?? status);
        onWrite?.('written');
        return;
      } catch (error) {
        if (hasCode(error, 'KUBE_NOT_FOUND')) {
          this.#written.delete(k);
          return;
        }
        if (!hasCode(error, 'KUBE_CONFLICT')) {
          onWrite?.('failed');
          throw error;
        }
        onWrite?.('conflict');
        logger.info('status write conflicted; re-reading the TokenScaler', {
          scaler: k,
          attempt: attempt + 1,
        });
        object = await api.getTokenScaler(scaler.namespace, scaler.name, signal);
        previous = parseStoredStatus(object.status);
      }
    }
    onWrite?.('failed');
    logger.warn('status write kept conflicting; trying again next tick', { scaler: k });
  }

  onScalerRemoved(namespace: string, name: string): void {
    this.#written.delete(`${namespace}/${name}`);
  }

  #context(
    state: ScalerState,
    object: KubeObject | undefined,
    previous: TokenScalerStatus | undefined,
  ): StatusContext {
    const { scaler } = state;
    const generation =
      object?.metadata.generation ?? (typeof scaler.generation === 'number' ? scaler.generation : undefined);
    // Metrics failures carry the sources' codes; a KUBE_ code comes from reading the scale target.
    const targetError = state.lastError?.code.startsWith('KUBE_') ? state.lastError.message : undefined;
    return {
      nowMs: this.#options.nowMs(),
      generation,
      previous,
      hpaName: this.#options.hpaName(scaler),
      contested: this.#options.contested(scaler.namespace, scaler.name),
      targetError,
    };
  }

  /** What we wrote, unless the watch has since shown a newer status (another writer, a restart). */
  #newest(
    written: TokenScalerStatus | undefined,
    object: KubeObject | undefined,
  ): TokenScalerStatus | undefined {
    const stored = parseStoredStatus(object?.status);
    if (written === undefined) return stored;
    if (stored === undefined) return written;
    return (stored.lastDecisionTime ?? '') > (written.lastDecisionTime ?? '') ? stored : written;
  }
}
