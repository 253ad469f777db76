/**
 * @module The in-memory fake of the Kubernetes port: the same store and rules as the loopback fake API
 * server (fake-apiserver-store.ts), without HTTP. It records every call (an action log to assert on,
 * as Knative's TableTest does) and takes injected failures by operation, so unit tests can drive 409,
 * 410, 500 and timeouts without a socket. test/kube-api-contract.test.ts proves it answers like the
 * real adapter over the loopback server.
 */

import { leaseOf, microTime } from '../../src/kube/client-node-api.ts';
import { codeOfStatus, KubeApiError, type KubeErrorCode } from '../../src/kube/errors.ts';
import type {
  EventRecord,
  EventSeries,
  KubeApi,
  KubeObject,
  LeaseRecord,
  ListResult,
  PodSummary,
  ScaleInfo,
  ScaleTarget,
  WatchEvent,
  WatchOptions,
} from '../../src/kube/kube-api.ts';
import { FakeStore, resourceKey, type StoredObject, StoreError } from './fake-apiserver-store.ts';

export type KubeOperation = keyof KubeApi;

export interface MemoryFailure {
  op: KubeOperation;
  code: KubeErrorCode;
  times: number;
}

export interface MemoryAction {
  op: KubeOperation;
  namespace?: string | undefined;
  name?: string | undefined;
}

const TKS = resourceKey('tokenscaler.dev', 'v1alpha1', 'tokenscalers');
const HPA = resourceKey('autoscaling', 'v2', 'horizontalpodautoscalers');
const EVENTS = resourceKey('events.k8s.io', 'v1', 'events');
const LEASES = resourceKey('coordination.k8s.io', 'v1', 'leases');
const PODS = resourceKey('', 'v1', 'pods');
const CONFIGMAPS = resourceKey('', 'v1', 'configmaps');
const SCALABLE: Record<string, string> = {
  'apps/v1/Deployment': resourceKey('apps', 'v1', 'deployments'),
  'apps/v1/StatefulSet': resourceKey('apps', 'v1', 'statefulsets'),
};

export class MemoryKubeApi implements KubeApi {
  readonly store: FakeStore;
  readonly actions: MemoryAction[] = [];
  readonly #failures: MemoryFailure[] = [];
  readonly #cutters = new Set<() => void>();

  constructor(store: FakeStore = new FakeStore()) {
    this.store = store;
  }

  fail(failure: MemoryFailure): void {
    this.#failures.push({ ...failure });
  }

  /** Ends every open watch as a dropped connection would (the watch resolves). */
  cutWatches(): void {
    for (const cut of [...this.#cutters]) cut();
  }

  async listTokenScalers(namespace: string | undefined, signal: AbortSignal): Promise<ListResult> {
    this.#enter('listTokenScalers', signal, namespace);
    const list = this.store.list(TKS, namespace);
    return { items: list.items as KubeObject[], resourceVersion: list.resourceVersion };
  }

  watchTokenScalers(
    namespace: string | undefined,
    options: WatchOptions,
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      this.#enter('watchTokenScalers', signal, namespace);
    } catch (error) {
      return Promise.reject(error);
    }
    const since = this.store.eventsSince(TKS, Number(options.resourceVersion), namespace);
    if (since === undefined)
      return Promise.reject(
        new KubeApiError(
          'KUBE_GONE',
          `watch tokenscalers: too old resource version: ${options.resourceVersion}`,
          { httpStatus: 410 },
        ),
      );
    return new Promise<void>((resolve) => {
      const deliver = (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: StoredObject) =>
        onEvent({
          type,
          object: object as KubeObject,
          resourceVersion: object.metadata.resourceVersion ?? '',
        });
      // Deliver replayed events asynchronously, as a stream would.
      queueMicrotask(() => {
        for (const event of since) deliver(event.type, event.object);
      });
      const unsubscribe = this.store.subscribe((event) => {
        if (event.resource !== TKS) return;
        if (namespace !== undefined && event.object.metadata.namespace !== namespace) return;
        deliver(event.type, event.object);
      });
      const end = () => {
        unsubscribe();
        clearTimeout(timer);
        signal.removeEventListener('abort', end);
        this.#cutters.delete(end);
        resolve();
      };
      const timer = setTimeout(end, options.timeoutSeconds * 1000);
      this.#cutters.add(end);
      signal.addEventListener('abort', end, { once: true });
    });
  }

  async getTokenScaler(namespace: string, name: string, signal: AbortSignal): Promise<KubeObject> {
    this.#enter('getTokenScaler', signal, namespace, name);
    return this.#run(() => this.store.get(TKS, namespace, name) as KubeObject, 'get tokenscaler');
  }

  async patchTokenScalerStatus(
    namespace: string,
    name: string,
    status: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<KubeObject> {
    this.#enter('patchTokenScalerStatus', signal, namespace, name);
    return this.#run(
      () => this.store.mergePatch(TKS, namespace, name, { status }, 'status') as KubeObject,
      'patch status',
    );
  }

  async getScale(namespace: string, target: ScaleTarget, signal: AbortSignal): Promise<ScaleInfo> {
    this.#enter('getScale', signal, namespace, target.name);
    const key = this.#scalable(target);
    const object = this.#run(() => this.store.get(key, namespace, target.name), 'get scale');
    const spec = (object.spec ?? {}) as {
      replicas?: number;
      selector?: { matchLabels?: Record<string, string> };
    };
    const labels = spec.selector?.matchLabels ?? {};
    const selector = Object.keys(labels)
      .sort()
      .map((k) => `${k}=${labels[k]}`)
      .join(',');
    return {
      specReplicas: spec.replicas ?? 1,
      statusReplicas: ((object.status ?? {}) as { replicas?: number }).replicas ?? 0,
      selector: selector === '' ? undefined : selector,
    };
  }

  async getTarget(namespace: string, target: ScaleTarget, signal: AbortSignal): Promise<KubeObject> {
    this.#enter('getTarget', signal, namespace, target.name);
    const key = this.#scalable(target);
    return this.#run(() => this.store.get(key, namespace, target.name) as KubeObject, 'get target');
  }

  async listPods(namespace: string, labelSelector: string, signal: AbortSignal): Promise<PodSummary[]> {
    this.#enter('listPods', signal, namespace);
    return this.store.list(PODS, namespace, labelSelector).items.map((pod) => {
      const status = (pod.status ?? {}) as {
        podIP?: string;
        phase?: string;
        conditions?: Array<{ type: string; status: string }>;
      };
      return {
        name: pod.metadata.name,
        ip: status.podIP === '' ? undefined : status.podIP,
        phase: status.phase,
        ready: (status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
        terminating: pod.metadata.deletionTimestamp !== undefined,
      };
    });
  }

  async listHpas(namespace: string, signal: AbortSignal): Promise<KubeObject[]> {
    this.#enter('listHpas', signal, namespace);
    return this.store.list(HPA, namespace).items as KubeObject[];
  }

  async getHpa(namespace: string, name: string, signal: AbortSignal): Promise<KubeObject | undefined> {
    this.#enter('getHpa', signal, namespace, name);
    try {
      return this.store.get(HPA, namespace, name) as KubeObject;
    } catch (error) {
      if (error instanceof StoreError && error.status === 404) return undefined;
      throw this.#map(error, 'get hpa');
    }
  }

  async createHpa(hpa: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    this.#enter('createHpa', signal, hpa.metadata.namespace, hpa.metadata.name);
    return this.#run(
      () => this.store.create(HPA, hpa.metadata.namespace, hpa as StoredObject) as KubeObject,
      'create hpa',
    );
  }

  async replaceHpa(hpa: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    this.#enter('replaceHpa', signal, hpa.metadata.namespace, hpa.metadata.name);
    return this.#run(
      () =>
        this.store.replace(HPA, hpa.metadata.namespace, hpa.metadata.name, hpa as StoredObject) as KubeObject,
      'update hpa',
    );
  }

  async deleteHpa(namespace: string, name: string, uid: string, signal: AbortSignal): Promise<void> {
    this.#enter('deleteHpa', signal, namespace, name);
    this.#run(() => this.store.delete(HPA, namespace, name, { uid }), 'delete hpa');
  }

  async createEvent(event: EventRecord, signal: AbortSignal): Promise<{ name: string }> {
    this.#enter('createEvent', signal, event.namespace, event.regarding.name);
    const created = this.#run(
      () =>
        this.store.create(EVENTS, event.namespace, {
          apiVersion: 'events.k8s.io/v1',
          kind: 'Event',
          metadata: { name: '', generateName: `${event.regarding.name}.`, namespace: event.namespace },
          eventTime: microTime(event.eventTimeMs),
          reportingController: event.reportingController,
          reportingInstance: event.reportingInstance,
          action: event.action,
          reason: event.reason,
          note: event.note,
          type: event.type,
          regarding: event.regarding,
        }),
      'create event',
    );
    return { name: created.metadata.name };
  }

  async patchEventSeries(
    namespace: string,
    name: string,
    series: EventSeries,
    signal: AbortSignal,
  ): Promise<void> {
    this.#enter('patchEventSeries', signal, namespace, name);
    this.#run(
      () =>
        this.store.mergePatch(EVENTS, namespace, name, {
          series: { count: series.count, lastObservedTime: microTime(series.lastObservedTimeMs) },
        }),
      'patch event',
    );
  }

  async getLease(namespace: string, name: string, signal: AbortSignal): Promise<LeaseRecord | undefined> {
    this.#enter('getLease', signal, namespace, name);
    try {
      return leaseOf(this.store.get(LEASES, namespace, name));
    } catch (error) {
      if (error instanceof StoreError && error.status === 404) return undefined;
      throw this.#map(error, 'get lease');
    }
  }

  async createLease(lease: LeaseRecord, signal: AbortSignal): Promise<LeaseRecord> {
    this.#enter('createLease', signal, lease.namespace, lease.name);
    return leaseOf(
      this.#run(() => this.store.create(LEASES, lease.namespace, leaseObject(lease)), 'create lease'),
    );
  }

  async replaceLease(lease: LeaseRecord, signal: AbortSignal): Promise<LeaseRecord> {
    this.#enter('replaceLease', signal, lease.namespace, lease.name);
    return leaseOf(
      this.#run(
        () => this.store.replace(LEASES, lease.namespace, lease.name, leaseObject(lease)),
        'update lease',
      ),
    );
  }

  async getConfigMapData(
    namespace: string,
    name: string,
    signal: AbortSignal,
  ): Promise<Record<string, string> | undefined> {
    this.#enter('getConfigMapData', signal, namespace, name);
    try {
      return {
        ...((this.store.get(CONFIGMAPS, namespace, name).data as Record<string, string> | undefined) ?? {}),
      };
    } catch (error) {
      if (error instanceof StoreError && error.status === 404) return undefined;
      throw this.#map(error, 'get configmap');
    }
  }

  #scalable(target: ScaleTarget): string {
    const key = SCALABLE[`${target.apiVersion}/${target.kind}`];
    if (key === undefined)
      throw new KubeApiError(
        'KUBE_NOT_FOUND',
        `scaleTargetRef: the API server serves no kind ${target.kind} in ${target.apiVersion}`,
      );
    return key;
  }

  #enter(op: KubeOperation, signal: AbortSignal, namespace?: string, name?: string): void {
    this.actions.push({ op, namespace, name });
    if (signal.aborted) throw new KubeApiError('KUBE_ABORTED', `${op}: aborted`);
    const failure = this.#failures.find((f) => f.op === op && f.times > 0);
    if (failure !== undefined) {
      failure.times -= 1;
      throw new KubeApiError(failure.code, `${op}: injected ${failure.code}`);
    }
  }

  #run<T>(fn: () => T, what: string): T {
    try {
      return fn();
    } catch (error) {
      throw this.#map(error, what);
    }
  }

  #map(error: unknown, what: string): KubeApiError {
    if (error instanceof KubeApiError) return error;
    if (error instanceof StoreError)
      return new KubeApiError(codeOfStatus(error.status, error.reason), `${what}: ${error.message}`, {
        httpStatus: error.status,
      });
    return new KubeApiError('KUBE_UNAVAILABLE', `${what}: ${String(error)}`, { cause: error });
  }
}

function leaseObject(lease: LeaseRecord): StoredObject {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: lease.name,
      namespace: lease.namespace,
      ...(lease.resourceVersion === undefined ? {} : { resourceVersion: lease.resourceVersion }),
    },
    spec: {
      holderIdentity: lease.holderIdentity ?? null,
      leaseDurationSeconds: lease.leaseDurationSeconds ?? null,
      acquireTime: lease.acquireTimeMs === undefined ? null : microTime(lease.acquireTimeMs),
      renewTime: lease.renewTimeMs === undefined ? null : microTime(lease.renewTimeMs),
      leaseTransitions: lease.leaseTransitions,
    },
  };
}
