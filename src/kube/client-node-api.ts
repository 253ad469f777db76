/**
 * @module The Kubernetes port over the real `@kubernetes/client-node` 2.x: the only module that
 * imports the client (code-style anchors §9: keep all use of the client behind one adapter).
 *
 * - Resources of API groups (TokenScalers, /scale of any scalable kind, HPAs, events.k8s.io Events,
 *   Leases) go through `CustomObjectsApi`, which returns the server's JSON as it is; each answer is
 *   checked with zod here. Pods and ConfigMaps (the core group) go through `CoreV1Api`.
 * - Every call carries the caller's AbortSignal plus a per-request deadline, set through a request
 *   middleware (the generated API has no signal parameter).
 * - Patches set their content type explicitly (merge patch), as the library's own docs require.
 * - Watches use the client's `Watch` (undici streaming), wrapped so a watch is one promise: it
 *   resolves on a routine end, rejects with KUBE_GONE on a 410 ERROR event, and is cut by the
 *   client's inactivity timer when the stream goes silent (the watchdog of client-node #596/#958).
 * - Failures become `KubeApiError`s with a stable code (src/kube/errors.ts).
 */
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  Observable,
  type ObservableMiddleware,
  PatchStrategy,
  Watch,
} from '@kubernetes/client-node';
import { z } from 'zod';
import { codeOfStatus, KubeApiError } from './errors.ts';
import {
  type EventRecord,
  type EventSeries,
  type KubeApi,
  type KubeObject,
  kubeObjectSchema,
  type LeaseRecord,
  type ListResult,
  type PodSummary,
  type ScaleInfo,
  type ScaleTarget,
  TOKENSCALER_GROUP,
  TOKENSCALER_PLURAL,
  TOKENSCALER_VERSION,
  type WatchEvent,
  type WatchOptions,
} from './kube-api.ts';

export interface ClientNodeKubeApiOptions {
  /** Deadline of one request (not of a watch stream). */
  requestTimeoutSeconds?: number;
  /** A watch that delivers nothing (not even a bookmark) this long after its server timeout is cut. */
  watchSilenceGraceSeconds?: number;
}

const listSchema = z.object({
  metadata: z.looseObject({ resourceVersion: z.string().optional() }).optional(),
  items: z.array(kubeObjectSchema),
});

const scaleSchema = z.object({
  spec: z.object({ replicas: z.number().int().nonnegative().optional() }).optional(),
  status: z
    .object({ replicas: z.number().int().nonnegative().optional(), selector: z.string().optional() })
    .optional(),
});

const leaseSchema = z.object({
  metadata: z.looseObject({
    name: z.string(),
    namespace: z.string().optional(),
    resourceVersion: z.string().optional(),
  }),
  spec: z
    .object({
      holderIdentity: z.string().nullish(),
      leaseDurationSeconds: z.number().int().nullish(),
      acquireTime: z.string().nullish(),
      renewTime: z.string().nullish(),
      leaseTransitions: z.number().int().nullish(),
    })
    .optional(),
});

const bookmarkSchema = z.object({ metadata: z.object({ resourceVersion: z.string() }) });

const statusBodySchema = z.looseObject({
  kind: z.literal('Status').optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().optional(),
});

/** Well-known scalable kinds; anything else is looked up through discovery once and cached. */
const KNOWN_PLURALS: Record<string, string> = {
  'apps/v1/Deployment': 'deployments',
  'apps/v1/StatefulSet': 'statefulsets',
  'apps/v1/ReplicaSet': 'replicasets',
  'v1/ReplicationController': 'replicationcontrollers',
};

export class ClientNodeKubeApi implements KubeApi {
  readonly #config: KubeConfig;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #timeoutMs: number;
  readonly #graceSeconds: number;
  readonly #plurals = new Map<string, string>();

  constructor(config: KubeConfig, options: ClientNodeKubeApiOptions = {}) {
    this.#config = config;
    this.#custom = config.makeApiClient(CustomObjectsApi);
    this.#core = config.makeApiClient(CoreV1Api);
    this.#timeoutMs = Math.round((options.requestTimeoutSeconds ?? 10) * 1000);
    this.#graceSeconds = options.watchSilenceGraceSeconds ?? 30;
  }

  async listTokenScalers(namespace: string | undefined, signal: AbortSignal): Promise<ListResult> {
    const base = { group: TOKENSCALER_GROUP, version: TOKENSCALER_VERSION, plural: TOKENSCALER_PLURAL };
    const raw = await this.#call('list tokenscalers', signal, undefined, (o) =>
      namespace === undefined
        ? this.#custom.listClusterCustomObject(base, o)
        : this.#custom.listNamespacedCustomObject({ ...base, namespace }, o),
    );
    const list = parse(listSchema, raw, 'TokenScalerList');
    return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  watchTokenScalers(
    namespace: string | undefined,
    options: WatchOptions,
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const prefix = `/apis/${TOKENSCALER_GROUP}/${TOKENSCALER_VERSION}`;
    const path =
      namespace === undefined
        ? `${prefix}/${TOKENSCALER_PLURAL}`
        : `${prefix}/namespaces/${encodeURIComponent(namespace)}/${TOKENSCALER_PLURAL}`;
    const watch = new Watch(this.#config);
    // The client's inactivity timer is the watchdog: bookmarks arrive about once a minute and the
    // server ends the stream at timeoutSeconds, so silence beyond both means a dead connection.
    // requestTimeoutMs is declared private in the typings but is the documented knob of the timer
    // (default 30 s, which would cut every quiet watch twice a minute).
    Reflect.set(watch, 'requestTimeoutMs', Math.round((options.timeoutSeconds + this.#graceSeconds) * 1000));
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let started = false;
      let controller: AbortController | undefined;
      const settle = (error?: unknown) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        controller?.abort();
        if (error === undefined || signal.aborted) resolve();
        else reject(error);
      };
      const onAbort = () => settle();
      signal.addEventListener('abort', onAbort, { once: true });
      watch
        .watch(
          path,
          {
            resourceVersion: options.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: options.timeoutSeconds,
          },
          (type: string, object: unknown) => {
            if (settled) return;
            if (type === 'ERROR') {
              const status = statusBodySchema.safeParse(object);
              const code = status.success ? (status.data.code ?? 500) : 500;
              const message = status.success ? (status.data.message ?? 'watch error') : 'watch error';
              settle(
                new KubeApiError(
                  codeOfStatus(code, status.success ? status.data.reason : undefined),
                  `watch tokenscalers: ${message}`,
                  { httpStatus: code },
                ),
              );
              return;
            }
            if (type === 'BOOKMARK') {
              const bookmark = bookmarkSchema.safeParse(object);
              if (bookmark.success)
                onEvent({ type, resourceVersion: bookmark.data.metadata.resourceVersion });
              return;
            }
            if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
            const parsed = kubeObjectSchema.safeParse(object);
            if (!parsed.success) {
              settle(
                new KubeApiError(
                  'KUBE_BAD_RESPONSE',
                  `watch tokenscalers: a ${type} event without a valid object`,
                  { cause: parsed.error },
                ),
              );
              return;
            }
            onEvent({
              type,
              object: parsed.data,
              resourceVersion: parsed.data.metadata.resourceVersion ?? '',
            });
          },
          (error: unknown) => {
            if (error === null || error === undefined) return settle();
            const mapped = mapError(error, 'watch tokenscalers', signal);
            // Once the stream has started, a dropped connection is a routine end (resume from the
            // last version); silence past the inactivity timer is the watchdog firing.
            if (started && mapped.code !== 'KUBE_TIMEOUT') return settle();
            settle(mapped);
          },
        )
        .then(
          (c) => {
            controller = c;
            started = true;
            if (settled) c.abort();
          },
          (error: unknown) => settle(mapError(error, 'watch tokenscalers', signal)),
        );
    });
  }

  async getTokenScaler(namespace: string, name: string, signal: AbortSignal): Promise<KubeObject> {
    const raw = await this.#call(`get tokenscaler ${namespace}/${name}`, signal, undefined, (o) =>
      this.#custom.getNamespacedCustomObject(
        {
          group: TOKENSCALER_GROUP,
          version: TOKENSCALER_VERSION,
          plural: TOKENSCALER_PLURAL,
          namespace,
          name,
        },
        o,
      ),
    );
    return parse(kubeObjectSchema, raw, 'TokenScaler');
  }

  async patchTokenScalerStatus(
    namespace: string,
    name: string,
    status: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<KubeObject> {
    const raw = await this.#call(
      `patch tokenscaler ${namespace}/${name} status`,
      signal,
      PatchStrategy.MergePatch,
      (o) =>
        this.#custom.patchNamespacedCustomObjectStatus(
          {
            group: TOKENSCALER_GROUP,
            version: TOKENSCALER_VERSION,
            plural: TOKENSCALER_PLURAL,
            namespace,
            name,
            body: { status },
          },
          o,
        ),
    );
    return parse(kubeObjectSchema, raw, 'TokenScaler');
  }

  async getScale(namespace: string, target: ScaleTarget, signal: AbortSignal): Promise<ScaleInfo> {
    const r = await this.#resourceOf(target, signal);
    const what = `get ${target.kind} ${namespace}/${target.name} scale`;
    const raw =
      r.group === ''
        ? await this.#call(what, signal, undefined, (o) =>
            this.#core.readNamespacedReplicationControllerScale({ namespace, name: target.name }, o),
          )
        : await this.#call(what, signal, undefined, (o) =>
            this.#custom.getNamespacedCustomObjectScale({ ...r, namespace, name: target.name }, o),
          );
    const scale = parse(scaleSchema, raw, 'Scale');
    return {
      specReplicas: scale.spec?.replicas ?? 0,
      statusReplicas: scale.status?.replicas ?? 0,
      selector: scale.status?.selector === '' ? undefined : scale.status?.selector,
    };
  }

  async getTarget(namespace: string, target: ScaleTarget, signal: AbortSignal): Promise<KubeObject> {
    const r = await this.#resourceOf(target, signal);
    if (r.group === '')
      throw new KubeApiError('KUBE_INVALID', `reading core ${target.kind} objects is not supported`);
    const raw = await this.#call(`get ${target.kind} ${namespace}/${target.name}`, signal, undefined, (o) =>
      this.#custom.getNamespacedCustomObject({ ...r, namespace, name: target.name }, o),
    );
    return parse(kubeObjectSchema, raw, target.kind);
  }

  async listPods(namespace: string, labelSelector: string, signal: AbortSignal): Promise<PodSummary[]> {
    const list = await this.#call(`list pods in ${namespace} (${labelSelector})`, signal, undefined, (o) =>
      this.#core.listNamespacedPod({ namespace, labelSelector }, o),
    );
    return list.items.map((pod) => ({
      name: pod.metadata?.name ?? '',
      ip: pod.status?.podIP === '' ? undefined : pod.status?.podIP,
      phase: pod.status?.phase,
      ready: (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
      terminating: pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null,
    }));
  }

  async listHpas(namespace: string, signal: AbortSignal): Promise<KubeObject[]> {
    const raw = await this.#call(`list horizontalpodautoscalers in ${namespace}`, signal, undefined, (o) =>
      this.#custom.listNamespacedCustomObject({ ...HPA, namespace }, o),
    );
    return parse(listSchema, raw, 'HorizontalPodAutoscalerList').items;
  }

  async getHpa(namespace: string, name: string, signal: AbortSignal): Promise<KubeObject | undefined> {
    try {
      const raw = await this.#call(
        `get horizontalpodautoscaler ${namespace}/${name}`,
        signal,
        undefined,
        (o) => this.#custom.getNamespacedCustomObject({ ...HPA, namespace, name }, o),
      );
      return parse(kubeObjectSchema, raw, 'HorizontalPodAutoscaler');
    } catch (error) {
      if (error instanceof KubeApiError && error.code === 'KUBE_NOT_FOUND') return undefined;
      throw error;
    }
  }

  async createHpa(hpa: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    const namespace = requireNamespace(hpa);
    const raw = await this.#call(
      `create horizontalpodautoscaler ${namespace}/${hpa.metadata.name}`,
      signal,
      undefined,
      (o) => this.#custom.createNamespacedCustomObject({ ...HPA, namespace, body: hpa }, o),
    );
    return parse(kubeObjectSchema, raw, 'HorizontalPodAutoscaler');
  }

  async replaceHpa(hpa: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    const namespace = requireNamespace(hpa);
    const name = hpa.metadata.name;
    const raw = await this.#call(
      `update horizontalpodautoscaler ${namespace}/${name}`,
      signal,
      undefined,
      (o) => this.#custom.replaceNamespacedCustomObject({ ...HPA, namespace, name, body: hpa }, o),
    );
    return parse(kubeObjectSchema, raw, 'HorizontalPodAutoscaler');
  }

  async deleteHpa(namespace: string, name: string, uid: string, signal: AbortSignal): Promise<void> {
    await this.#call(`delete horizontalpodautoscaler ${namespace}/${name}`, signal, undefined, (o) =>
      this.#custom.deleteNamespacedCustomObject(
        { ...HPA, namespace, name, body: { preconditions: { uid } } },
        o,
      ),
    );
  }

  async createEvent(event: EventRecord, signal: AbortSignal): Promise<{ name: string }> {
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { generateName: `${event.regarding.name}.`, namespace: event.namespace },
      eventTime: microTime(event.eventTimeMs),
      reportingController: event.reportingController,
      reportingInstance: event.reportingInstance,
      action: event.action,
      reason: event.reason,
      note: event.note,
      type: event.type,
      regarding: event.regarding,
    };
    const raw = await this.#call(
      `create event ${event.reason} for ${event.regarding.name}`,
      signal,
      undefined,
      (o) => this.#custom.createNamespacedCustomObject({ ...EVENTS, namespace: event.namespace, body }, o),
    );
    return { name: parse(kubeObjectSchema, raw, 'Event').metadata.name };
  }

  async patchEventSeries(
    namespace: string,
    name: string,
    series: EventSeries,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#call(`patch event ${namespace}/${name}`, signal, PatchStrategy.MergePatch, (o) =>
      this.#custom.patchNamespacedCustomObject(
        {
          ...EVENTS,
          namespace,
          name,
          body: { series: { count: series.count, lastObservedTime: microTime(series.lastObservedTimeMs) } },
        },
        o,
      ),
    );
  }

  async getLease(namespace: string, name: string, signal: AbortSignal): Promise<LeaseRecord | undefined> {
    try {
      const raw = await this.#call(`get lease ${namespace}/${name}`, signal, undefined, (o) =>
        this.#custom.getNamespacedCustomObject({ ...LEASES, namespace, name }, o),
      );
      return leaseOf(raw);
    } catch (error) {
      if (error instanceof KubeApiError && error.code === 'KUBE_NOT_FOUND') return undefined;
      throw error;
    }
  }

  async createLease(lease: LeaseRecord, signal: AbortSignal): Promise<LeaseRecord> {
    const raw = await this.#call(`create lease ${lease.namespace}/${lease.name}`, signal, undefined, (o) =>
      this.#custom.createNamespacedCustomObject(
        { ...LEASES, namespace: lease.namespace, body: leaseBody(lease) },
        o,
      ),
    );
    return leaseOf(raw);
  }

  async replaceLease(lease: LeaseRecord, signal: AbortSignal): Promise<LeaseRecord> {
    const raw = await this.#call(`update lease ${lease.namespace}/${lease.name}`, signal, undefined, (o) =>
      this.#custom.replaceNamespacedCustomObject(
        { ...LEASES, namespace: lease.namespace, name: lease.name, body: leaseBody(lease) },
        o,
      ),
    );
    return leaseOf(raw);
  }

  async getConfigMapData(
    namespace: string,
    name: string,
    signal: AbortSignal,
  ): Promise<Record<string, string> | undefined> {
    try {
      const cm = await this.#call(`get configmap ${namespace}/${name}`, signal, undefined, (o) =>
        this.#core.readNamespacedConfigMap({ namespace, name }, o),
      );
      return { ...(cm.data ?? {}) };
    } catch (error) {
      if (error instanceof KubeApiError && error.code === 'KUBE_NOT_FOUND') return undefined;
      throw error;
    }
  }

  async #resourceOf(
    target: ScaleTarget,
    signal: AbortSignal,
  ): Promise<{ group: string; version: string; plural: string }> {
    const slash = target.apiVersion.indexOf('/');
    const group = slash < 0 ? '' : target.apiVersion.slice(0, slash);
    const version = slash < 0 ? target.apiVersion : target.apiVersion.slice(slash + 1);
    const key = `${target.apiVersion}/${target.kind}`;
    const known = KNOWN_PLURALS[key] ?? this.#plurals.get(key);
    if (known !== undefined) return { group, version, plural: known };
    if (group === '')
      throw new KubeApiError(
        'KUBE_INVALID',
        `scaleTargetRef: core kind ${target.kind} has no scale subresource tokenscaler can read`,
      );
    const resources = await this.#call(`discover ${target.apiVersion}`, signal, undefined, (o) =>
      this.#custom.getAPIResources({ group, version }, o),
    );
    const match = resources.resources.find((r) => r.kind === target.kind && !r.name.includes('/'));
    if (match === undefined)
      throw new KubeApiError(
        'KUBE_NOT_FOUND',
        `scaleTargetRef: the API server serves no kind ${target.kind} in ${target.apiVersion}`,
      );
    if (!resources.resources.some((r) => r.name === `${match.name}/scale`))
      throw new KubeApiError(
        'KUBE_INVALID',
        `scaleTargetRef: ${target.kind} (${match.name}) has no scale subresource`,
      );
    this.#plurals.set(key, match.name);
    return { group, version, plural: match.name };
  }

  /** Runs one generated-client call with the caller's signal, a deadline and an optional content type. */
  async #call<T>(
    what: string,
    signal: AbortSignal,
    contentType: string | undefined,
    run: (options: { middleware: ObservableMiddleware[]; middlewareMergeStrategy: 'append' }) => Promise<T>,
  ): Promise<T> {
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    const combined = AbortSignal.any([signal, deadline]);
    const middleware: ObservableMiddleware = {
      pre: (context) => {
        context.setSignal(combined);
        if (contentType !== undefined) context.setHeaderParam('Content-Type', contentType);
        return new Observable(Promise.resolve(context));
      },
      post: (response) => new Observable(Promise.resolve(response)),
    };
    try {
      return await run({ middleware: [middleware], middlewareMergeStrategy: 'append' });
    } catch (error) {
      throw mapError(error, what, signal, deadline);
    }
  }
}

const HPA = { group: 'autoscaling', version: 'v2', plural: 'horizontalpodautoscalers' };
const EVENTS = { group: 'events.k8s.io', version: 'v1', plural: 'events' };
const LEASES = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' };

function mapError(error: unknown, what: string, signal: AbortSignal, deadline?: AbortSignal): KubeApiError {
  if (error instanceof KubeApiError) return error;
  if (error instanceof ApiException) {
    const status = statusOfBody(error.body);
    const code = codeOfStatus(error.code, status?.reason);
    const detail = status?.message ?? `HTTP ${error.code}`;
    return new KubeApiError(code, `${what}: ${detail}`, { cause: error, httpStatus: error.code });
  }
  if (signal.aborted) return new KubeApiError('KUBE_ABORTED', `${what}: aborted`, { cause: error });
  const name = error instanceof Error ? error.name : '';
  if (deadline?.aborted || name === 'TimeoutError')
    return new KubeApiError('KUBE_TIMEOUT', `${what}: no answer within the deadline`, { cause: error });
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number')
    return new KubeApiError(codeOfStatus(statusCode), `${what}: HTTP ${statusCode}`, {
      cause: error,
      httpStatus: statusCode,
    });
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return new KubeApiError('KUBE_UNAVAILABLE', `${what}: ${message}${cause}`, { cause: error });
}

function statusOfBody(body: unknown): { message?: string; reason?: string } | undefined {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return body.trim() === '' ? undefined : { message: body.trim().slice(0, 300) };
    }
  }
  const parsed = statusBodySchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

function parse<T>(schema: z.ZodType<T>, raw: unknown, what: string): T {
  const result = schema.safeParse(raw);
  if (!result.success)
    throw new KubeApiError(
      'KUBE_BAD_RESPONSE',
      `the API server answered with an invalid ${what}: ${z.prettifyError(result.error)}`,
      {
        cause: result.error,
      },
    );
  return result.data;
}

function requireNamespace(object: KubeObject): string {
  const namespace = object.metadata.namespace;
  if (namespace === undefined)
    throw new KubeApiError('KUBE_INVALID', `${object.kind} ${object.metadata.name} has no namespace`);
  return namespace;
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function leaseBody(lease: LeaseRecord): Record<string, unknown> {
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

export function leaseOf(raw: unknown): LeaseRecord {
  const lease = parse(leaseSchema, raw, 'Lease');
  const time = (value: string | null | undefined) => {
    if (value === null || value === undefined) return undefined;
    const ms = Date.parse(value);
    return Number.isFinite(ms) ? ms : undefined;
  };
  return {
    namespace: lease.metadata.namespace ?? '',
    name: lease.metadata.name,
    holderIdentity: lease.spec?.holderIdentity === '' ? undefined : (lease.spec?.holderIdentity ?? undefined),
    leaseDurationSeconds: lease.spec?.leaseDurationSeconds ?? undefined,
    acquireTimeMs: time(lease.spec?.acquireTime),
    renewTimeMs: time(lease.spec?.renewTime),
    leaseTransitions: lease.spec?.leaseTransitions ?? 0,
    ...(lease.metadata.resourceVersion === undefined
      ? {}
      : { resourceVersion: lease.metadata.resourceVersion }),
  };
}
