/**
 * @module Detects a second owner of the target's spec.replicas: a GitOps tool or chart that re-applies
 * a replica count while the HPA scales (argo-cd#5105; vllm-project/production-stack#891; code-style
 * anchors §8 "Two owners for spec.replicas").
 *
 * The signal: spec.replicas had converged on the desired count, the desired count did not change,
 * and yet spec.replicas moved away. The HPA never does that (it moves toward the served metric, and
 * with `AverageValue: 1` the served metric is the desired count), so someone else wrote it. One such
 * departure is reported as a Warning (a manual `kubectl scale` looks the same); two within
 * `windowSeconds` are a fight: condition ReplicasContested=True and an event naming the other
 * writer, read from the target's managedFields when the controller may read the target.
 *
 * Example: desired 5, spec.replicas 5 (converged); ArgoCD syncs replicas: 2 -> departure 1; the HPA
 * puts back 5; ArgoCD syncs again -> departure 2 -> contested.
 */
import type { DecisionListener, Logger } from '../reconcile/ports.ts';
import type { ScalerState } from '../reconcile/scaler-state.ts';
import type { EventRecorder } from './events.ts';
import type { KubeApi, ManagedFieldsEntry } from './kube-api.ts';

export interface ReplicasFightOptions {
  api: KubeApi;
  recorder: EventRecorder;
  nowMs: () => number;
  logger: Logger;
  windowSeconds?: number;
  /** Departures within the window that make a fight (default 2). */
  threshold?: number;
}

interface Track {
  lastDesired: number | undefined;
  lastSpec: number | undefined;
  departuresMs: number[];
  contested: { message: string } | undefined;
}

export class ReplicasFightDetector implements DecisionListener {
  readonly #options: ReplicasFightOptions;
  readonly #tracks = new Map<string, Track>();

  constructor(options: ReplicasFightOptions) {
    this.#options = options;
  }

  /** Set while a fight is on, for the status writer's ReplicasContested condition. */
  contested(namespace: string, name: string): { message: string } | undefined {
    return this.#tracks.get(`${namespace}/${name}`)?.contested;
  }

  async onDecision(state: ScalerState, signal: AbortSignal): Promise<void> {
    const { scaler, decision, replicas } = state;
    if (decision === undefined || replicas === undefined) return;
    const k = `${scaler.namespace}/${scaler.name}`;
    const now = this.#options.nowMs();
    const track = this.#tracks.get(k) ?? {
      lastDesired: undefined,
      lastSpec: undefined,
      departuresMs: [],
      contested: undefined,
    };
    this.#tracks.set(k, track);
    const desired = decision.desiredReplicas;
    const spec = replicas.current;
    const converged = track.lastDesired !== undefined && track.lastSpec === track.lastDesired;
    const departed = converged && track.lastDesired === desired && spec !== desired;
    const windowMs = (this.#options.windowSeconds ?? 600) * 1000;
    track.departuresMs = track.departuresMs.filter((t) => now - t < windowMs);
    if (departed) {
      track.departuresMs.push(now);
      const writer = await this.#otherWriter(state, signal);
      const who = writer === undefined ? 'another writer' : `"${writer}"`;
      if (track.departuresMs.length >= (this.#options.threshold ?? 2)) {
        const message = `${who} set spec.replicas of ${scaler.spec.scaleTargetRef.kind} ${scaler.spec.scaleTargetRef.name} to ${spec} while tokenscaler wants ${desired} (${track.departuresMs.length} times in ${windowMs / 1000}s); leave replicas out of the manifests and ignore /spec/replicas in GitOps`;
        const first = track.contested === undefined;
        track.contested = { message };
        if (first)
          await this.#options.recorder.record(
            { scaler, type: 'Warning', reason: 'ReplicasContested', action: 'Scale', note: message },
            signal,
          );
      } else {
        await this.#options.recorder.record(
          {
            scaler,
            type: 'Warning',
            reason: 'ReplicasContested',
            action: 'Scale',
            note: `${who} changed spec.replicas to ${spec} while tokenscaler wants ${desired}`,
          },
          signal,
        );
      }
    } else if (track.contested !== undefined && track.departuresMs.length === 0) {
      track.contested = undefined;
    }
    track.lastDesired = desired;
    track.lastSpec = spec;
  }

  onScalerRemoved(namespace: string, name: string): void {
    this.#tracks.delete(`${namespace}/${name}`);
  }

  /** The last manager other than the HPA (kube-controller-manager via /scale) that owns spec.replicas. */
  async #otherWriter(state: ScalerState, signal: AbortSignal): Promise<string | undefined> {
    try {
      const target = await this.#options.api.getTarget(
        state.scaler.namespace,
        state.scaler.spec.scaleTargetRef,
        signal,
      );
      return otherReplicasOwner(target.metadata.managedFields ?? []);
    } catch (error) {
      this.#options.logger.info('cannot read the target to name the writer of spec.replicas', {
        scaler: `${state.scaler.namespace}/${state.scaler.name}`,
        error: error instanceof Error ? error.message : String(error),
      });
      return undefined;
    }
  }
}

/** The newest managedFields entry owning f:spec.f:replicas that is not the HPA writing through /scale. */
export function otherReplicasOwner(entries: readonly ManagedFieldsEntry[]): string | undefined {
  const owners = entries
    .filter((e) => {
      const spec = e.fieldsV1?.['f:spec'] as Record<string, unknown> | undefined;
      return spec !== undefined && 'f:replicas' in spec;
    })
    .filter((e) => !(e.manager === 'kube-controller-manager' && e.subresource === 'scale'))
    .sort((a, b) => (a.time ?? '').localeCompare(b.time ?? ''));
  return owners.at(-1)?.manager;
}
