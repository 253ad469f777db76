/**
 * @module Replicas of the scale target, as the reconcile loop's ReplicaReader: `current` is the
 * /scale subresource's spec.replicas (what the workload asks for, ready or starting), `ready` the
 * pods behind status.selector whose Ready condition is True and that are not terminating. The
 * /scale subresource works for every scalable kind (Deployment, StatefulSet, LeaderWorkerSet, Argo
 * Rollout...) without knowing its schema, which is why the HPA uses it too.
 */
import type { ReplicaCounts, ReplicaReader, ScalerDefinition } from '../reconcile/ports.ts';
import type { KubeApi, PodSummary } from './kube-api.ts';

export class KubeReplicaReader implements ReplicaReader {
  readonly #api: KubeApi;

  constructor(api: KubeApi) {
    this.#api = api;
  }

  async read(scaler: ScalerDefinition, signal: AbortSignal): Promise<ReplicaCounts> {
    const scale = await this.#api.getScale(scaler.namespace, scaler.spec.scaleTargetRef, signal);
    if (scale.selector === undefined) return { current: scale.specReplicas, ready: 0 };
    const pods = await this.#api.listPods(scaler.namespace, scale.selector, signal);
    return { current: scale.specReplicas, ready: pods.filter(isServing).length };
  }
}

/** Ready and not shutting down: the pods that take traffic and report engine metrics. */
export function isServing(pod: PodSummary): boolean {
  return pod.ready && !pod.terminating && pod.ip !== undefined;
}
