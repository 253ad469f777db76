/**
 * @module The Kubernetes port: the few calls tokenscaler makes to the API server, in the shapes its
 * own code uses. Two implementations honour it and one contract suite runs against both
 * (test/kube-api-contract.test.ts): `ClientNodeKubeApi` over the real `@kubernetes/client-node`
 * (src/kube/client-node-api.ts), and the in-memory fake the unit tests use
 * (test/support/fake-apiserver-memory.ts).
 *
 * Objects that tokenscaler owns or reads whole (TokenScalers, HPAs, Events) travel as plain JSON
 * (`KubeObject`); objects it only reads a few fields of (pods, /scale, Leases) are mapped to small
 * records here, so no caller depends on the client library's model classes. Every call takes an
 * AbortSignal: the adapter adds its own deadline on top, so a hung API server never blocks a tick.
 */
import { z } from 'zod';

export const TOKENSCALER_GROUP = 'tokenscaler.dev';
export const TOKENSCALER_VERSION = 'v1alpha1';
export const TOKENSCALER_API_VERSION = `${TOKENSCALER_GROUP}/${TOKENSCALER_VERSION}`;
export const TOKENSCALER_PLURAL = 'tokenscalers';
export const TOKENSCALER_KIND = 'TokenScaler';

export const ownerReferenceSchema = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});
export type OwnerReference = z.infer<typeof ownerReferenceSchema>;

export const managedFieldsEntrySchema = z.object({
  manager: z.string().optional(),
  operation: z.string().optional(),
  subresource: z.string().optional(),
  time: z.string().optional(),
  fieldsV1: z.record(z.string(), z.unknown()).optional(),
});
export type ManagedFieldsEntry = z.infer<typeof managedFieldsEntrySchema>;

export const kubeMetadataSchema = z.looseObject({
  name: z.string().min(1),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  ownerReferences: z.array(ownerReferenceSchema).optional(),
  managedFields: z.array(managedFieldsEntrySchema).optional(),
});
export type KubeMetadata = z.infer<typeof kubeMetadataSchema>;

/** Any Kubernetes object as JSON; fields beyond apiVersion/kind/metadata are kept as they came. */
export const kubeObjectSchema = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: kubeMetadataSchema,
});
export type KubeObject = z.infer<typeof kubeObjectSchema>;

export interface ListResult {
  items: KubeObject[];
  /** The list's resourceVersion: a watch started from it misses nothing. */
  resourceVersion: string;
}

/** A change, or a bookmark (no change; the stream is alive and has reached `resourceVersion`). */
export type WatchEvent =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject; resourceVersion: string }
  | { type: 'BOOKMARK'; resourceVersion: string };

export interface WatchOptions {
  /** Start after this resourceVersion (from a list or the last event seen). */
  resourceVersion: string;
  /** The server ends the stream after this long (a healthy, routine end: re-watch from the last version). */
  timeoutSeconds: number;
}

/** The target's scale subresource (autoscaling/v1 Scale), plus where it was read. */
export interface ScaleInfo {
  /** spec.replicas: what the target asks for. */
  specReplicas: number;
  /** status.replicas: pods the workload controller counts (running or starting). */
  statusReplicas: number;
  /** status.selector: the label selector of the target's pods, in string form. */
  selector: string | undefined;
}

export interface ScaleTarget {
  apiVersion: string;
  kind: string;
  name: string;
}

export interface PodSummary {
  name: string;
  ip: string | undefined;
  phase: string | undefined;
  /** The Ready condition is True. */
  ready: boolean;
  /** metadata.deletionTimestamp is set: the pod is shutting down. */
  terminating: boolean;
}

export interface LeaseRecord {
  namespace: string;
  name: string;
  holderIdentity: string | undefined;
  leaseDurationSeconds: number | undefined;
  /** Unix ms, from spec.acquireTime / spec.renewTime (MicroTime). */
  acquireTimeMs: number | undefined;
  renewTimeMs: number | undefined;
  leaseTransitions: number;
  /** Compare-and-swap token: an update with a stale one fails with KUBE_CONFLICT. */
  resourceVersion?: string;
}

/** An events.k8s.io/v1 Event as tokenscaler writes it. */
export interface EventRecord {
  namespace: string;
  /** Generated from the regarding object's name (generateName). */
  regarding: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string };
  type: 'Normal' | 'Warning';
  reason: string;
  action: string;
  note: string;
  /** Unix ms. */
  eventTimeMs: number;
  reportingController: string;
  reportingInstance: string;
}

export interface EventSeries {
  count: number;
  lastObservedTimeMs: number;
}

export interface KubeApi {
  /** TokenScalers of one namespace, or of all namespaces when `namespace` is undefined. */
  listTokenScalers(namespace: string | undefined, signal: AbortSignal): Promise<ListResult>;
  /**
   * Streams changes after `options.resourceVersion` to `onEvent` until the stream ends. Resolves on a
   * routine end (server timeout, connection closed after the stream started, caller abort); rejects
   * with KUBE_GONE when the version is too old (relist), KUBE_TIMEOUT when the stream went silent
   * (watchdog), and another KubeApiError when the watch could not start.
   */
  watchTokenScalers(
    namespace: string | undefined,
    options: WatchOptions,
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void>;
  getTokenScaler(namespace: string, name: string, signal: AbortSignal): Promise<KubeObject>;
  /** JSON merge patch of the status subresource: `status` replaces the fields it names, lists whole. */
  patchTokenScalerStatus(
    namespace: string,
    name: string,
    status: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<KubeObject>;

  getScale(namespace: string, target: ScaleTarget, signal: AbortSignal): Promise<ScaleInfo>;
  /** The target object itself (for managedFields: who last wrote spec.replicas). */
  getTarget(namespace: string, target: ScaleTarget, signal: AbortSignal): Promise<KubeObject>;
  listPods(namespace: string, labelSelector: string, signal: AbortSignal): Promise<PodSummary[]>;

  listHpas(namespace: string, signal: AbortSignal): Promise<KubeObject[]>;
  /** Undefined when there is none. */
  getHpa(namespace: string, name: string, signal: AbortSignal): Promise<KubeObject | undefined>;
  createHpa(hpa: KubeObject, signal: AbortSignal): Promise<KubeObject>;
  /** PUT; `hpa.metadata.resourceVersion` guards it (KUBE_CONFLICT when stale). */
  replaceHpa(hpa: KubeObject, signal: AbortSignal): Promise<KubeObject>;
  /** Deletes only the object with this uid (a precondition), so a re-created namesake survives. */
  deleteHpa(namespace: string, name: string, uid: string, signal: AbortSignal): Promise<void>;

  createEvent(event: EventRecord, signal: AbortSignal): Promise<{ name: string }>;
  patchEventSeries(namespace: string, name: string, series: EventSeries, signal: AbortSignal): Promise<void>;

  getLease(namespace: string, name: string, signal: AbortSignal): Promise<LeaseRecord | undefined>;
  createLease(lease: LeaseRecord, signal: AbortSignal): Promise<LeaseRecord>;
  /** PUT guarded by `lease.resourceVersion`. */
  replaceLease(lease: LeaseRecord, signal: AbortSignal): Promise<LeaseRecord>;

  /** A ConfigMap's data, or undefined when it does not exist. */
  getConfigMapData(
    namespace: string,
    name: string,
    signal: AbortSignal,
  ): Promise<Record<string, string> | undefined>;
}

/** `a=b,c=d` from matchLabels, sorted by key (the form the API server and kubectl print). */
export function selectorOfMatchLabels(matchLabels: Readonly<Record<string, string>>): string {
  return Object.keys(matchLabels)
    .sort()
    .map((key) => `${key}=${matchLabels[key]}`)
    .join(',');
}
