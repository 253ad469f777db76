/**
 * @module The object store behind the fake API servers: Kubernetes storage semantics without etcd.
 * One global resourceVersion counter (as etcd's revision), uid/creationTimestamp/generation set by
 * the server, optimistic concurrency (409 on a stale resourceVersion), the status subresource (a
 * main-resource write keeps status, a status write keeps everything else, and only spec changes bump
 * metadata.generation), JSON merge patch (RFC 7386), delete preconditions, and a bounded event history
 * for watches (a watch from a version older than the history gets 410 Gone, as after an etcd
 * compaction). Both the loopback HTTP fake (fake-apiserver.ts) and the in-memory port fake
 * (fake-apiserver-memory.ts) sit on it, so they cannot disagree about these rules.
 */
import { randomUUID } from 'node:crypto';

export interface ResourceInfo {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  hasStatus: boolean;
  /** Serves /scale (autoscaling/v1 Scale) from spec.replicas and spec.selector.matchLabels. */
  hasScale: boolean;
  /** Defined by a CRD (status is dropped on create). */
  custom?: boolean;
}

export type StoredObject = {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown> & { name: string; namespace?: string; resourceVersion?: string };
  [key: string]: unknown;
};

export interface StoreEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: StoredObject;
  resourceVersion: number;
  resource: string;
}

/** A failure with the HTTP status and Status reason the real server would answer. */
export class StoreError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, reason: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details === undefined ? {} : { details: this.details }),
      code: this.status,
    };
  }
}

export const BUILTIN_RESOURCES: readonly ResourceInfo[] = [
  {
    group: 'tokenscaler.dev',
    version: 'v1alpha1',
    plural: 'tokenscalers',
    singular: 'tokenscaler',
    kind: 'TokenScaler',
    namespaced: true,
    shortNames: ['tks'],
    categories: ['tokenscaler'],
    hasStatus: true,
    hasScale: false,
    custom: true,
  },
  {
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    singular: 'deployment',
    kind: 'Deployment',
    namespaced: true,
    shortNames: ['deploy'],
    categories: ['all'],
    hasStatus: true,
    hasScale: true,
  },
  {
    group: 'apps',
    version: 'v1',
    plural: 'statefulsets',
    singular: 'statefulset',
    kind: 'StatefulSet',
    namespaced: true,
    shortNames: ['sts'],
    categories: ['all'],
    hasStatus: true,
    hasScale: true,
  },
  {
    group: '',
    version: 'v1',
    plural: 'pods',
    singular: 'pod',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    categories: ['all'],
    hasStatus: true,
    hasScale: false,
  },
  {
    group: '',
    version: 'v1',
    plural: 'configmaps',
    singular: 'configmap',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
    hasStatus: false,
    hasScale: false,
  },
  {
    group: '',
    version: 'v1',
    plural: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    hasStatus: true,
    hasScale: false,
  },
  {
    group: 'autoscaling',
    version: 'v2',
    plural: 'horizontalpodautoscalers',
    singular: 'horizontalpodautoscaler',
    kind: 'HorizontalPodAutoscaler',
    namespaced: true,
    shortNames: ['hpa'],
    categories: ['all'],
    hasStatus: true,
    hasScale: false,
  },
  {
    group: 'events.k8s.io',
    version: 'v1',
    plural: 'events',
    singular: 'event',
    kind: 'Event',
    namespaced: true,
    shortNames: ['ev'],
    hasStatus: false,
    hasScale: false,
  },
  {
    group: 'coordination.k8s.io',
    version: 'v1',
    plural: 'leases',
    singular: 'lease',
    kind: 'Lease',
    namespaced: true,
    hasStatus: false,
    hasScale: false,
  },
];

export const resourceKey = (group: string, version: string, plural: string) =>
  `${group === '' ? 'core' : group}/${version}/${plural}`;

export const apiVersionOf = (r: ResourceInfo) => (r.group === '' ? r.version : `${r.group}/${r.version}`);

export type Validator = (object: StoredObject) => { object: StoredObject; errors: string[] };

export interface StoreOptions {
  /** Events kept for watches; a watch from an older version gets 410 Gone. */
  historySize?: number;
  nowMs?: () => number;
  /** Admission for a resource key: defaulting and schema validation (422 on errors). */
  validators?: Record<string, Validator>;
}

type Listener = (event: StoreEvent) => void;

export class FakeStore {
  readonly resources = new Map<string, ResourceInfo>();
  readonly #objects = new Map<string, Map<string, StoredObject>>();
  #history: StoreEvent[] = [];
  /** Oldest resourceVersion a watch may resume after; older ones are "compacted". */
  #compactedThrough = 0;
  #revision = 100;
  readonly #historySize: number;
  readonly #nowMs: () => number;
  readonly #listeners = new Set<Listener>();
  readonly #validators: Record<string, Validator>;

  constructor(options: StoreOptions = {}) {
    for (const r of BUILTIN_RESOURCES) this.resources.set(resourceKey(r.group, r.version, r.plural), r);
    this.#historySize = options.historySize ?? 500;
    this.#nowMs = options.nowMs ?? Date.now;
    this.#validators = options.validators ?? {};
  }

  get revision(): number {
    return this.#revision;
  }

  resource(key: string): ResourceInfo {
    const r = this.resources.get(key);
    if (r === undefined)
      throw new StoreError(404, 'NotFound', `the server could not find the requested resource (${key})`);
    return r;
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Forgets the whole history: every watch resuming from an earlier version gets 410 Gone. */
  compact(): void {
    this.#compactedThrough = this.#revision;
    this.#history = [];
  }

  list(
    key: string,
    namespace?: string,
    labelSelector?: string,
  ): { items: StoredObject[]; resourceVersion: string } {
    const match = parseSelector(labelSelector);
    const items = [...(this.#objects.get(key)?.values() ?? [])]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .filter((o) => match((o.metadata.labels as Record<string, string> | undefined) ?? {}))
      .sort((a, b) => objectKey(a).localeCompare(objectKey(b)))
      .map(clone);
    return { items, resourceVersion: String(this.#revision) };
  }

  get(key: string, namespace: string | undefined, name: string): StoredObject {
    const found = this.#objects.get(key)?.get(nameKey(namespace, name));
    if (found === undefined) {
      const r = this.resource(key);
      throw new StoreError(
        404,
        'NotFound',
        `${r.plural}${r.group ? `.${r.group}` : ''} "${name}" not found`,
        {
          name,
          group: r.group,
          kind: r.plural,
        },
      );
    }
    return clone(found);
  }

  create(key: string, namespace: string | undefined, input: StoredObject): StoredObject {
    const r = this.resource(key);
    const object = clone(input);
    const meta = object.metadata;
    if ((meta.name === undefined || meta.name === '') && typeof meta.generateName === 'string') {
      meta.name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
    }
    if (typeof meta.name !== 'string' || meta.name === '')
      throw new StoreError(
        422,
        'Invalid',
        `${r.kind} is invalid: metadata.name: Required value: name or generateName is required`,
      );
    if (r.namespaced) meta.namespace = namespace ?? (meta.namespace as string | undefined) ?? 'default';
    const bucket = this.#bucket(key);
    if (bucket.has(nameKey(meta.namespace, meta.name)))
      throw new StoreError(
        409,
        'AlreadyExists',
        `${r.plural}${r.group ? `.${r.group}` : ''} "${meta.name}" already exists`,
        {
          name: meta.name,
          group: r.group,
          kind: r.plural,
        },
      );
    object.apiVersion = apiVersionOf(r);
    object.kind = r.kind;
    const admitted = this.#admit(key, r, object);
    const m = admitted.metadata;
    m.uid = randomUUID();
    m.creationTimestamp = new Date(Math.floor(this.#nowMs() / 1000) * 1000)
      .toISOString()
      .replace('.000Z', 'Z');
    if (r.hasStatus && r.custom === true) {
      // Custom resources with a status subresource drop status on create (built-in kinds reset it
      // too; the fake keeps theirs so tests can create ready pods in one call).
      delete admitted.status;
    }
    m.generation = 1;
    delete m.resourceVersion;
    return this.#commit(key, 'ADDED', admitted);
  }

  /** PUT of the main resource (or of `status`): guarded by metadata.resourceVersion when it is given. */
  replace(
    key: string,
    namespace: string | undefined,
    name: string,
    input: StoredObject,
    subresource?: 'status',
  ): StoredObject {
    const r = this.resource(key);
    const current = this.get(key, namespace, name);
    const given = input.metadata?.resourceVersion;
    if (given !== undefined && given !== '' && given !== current.metadata.resourceVersion) {
      throw conflict(r, name);
    }
    if (input.metadata?.uid !== undefined && input.metadata.uid !== current.metadata.uid) {
      throw new StoreError(
        409,
        'Conflict',
        `Precondition failed: UID in precondition: ${String(input.metadata.uid)}, UID in object meta: ${String(current.metadata.uid)}`,
      );
    }
    return this.#write(key, r, current, clone(input), subresource);
  }

  /** JSON merge patch; a resourceVersion in the patch's metadata guards it. */
  mergePatch(
    key: string,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    subresource?: 'status',
  ): StoredObject {
    const r = this.resource(key);
    const current = this.get(key, namespace, name);
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch))
      throw new StoreError(400, 'BadRequest', 'the merge patch must be a JSON object');
    const rv = ((patch as Record<string, unknown>).metadata as Record<string, unknown> | undefined)
      ?.resourceVersion;
    if (rv !== undefined && rv !== current.metadata.resourceVersion) throw conflict(r, name);
    const merged = applyMergePatch(clone(current), patch) as StoredObject;
    return this.#write(key, r, current, merged, subresource);
  }

  delete(
    key: string,
    namespace: string | undefined,
    name: string,
    preconditions?: { uid?: string; resourceVersion?: string },
  ): StoredObject {
    const r = this.resource(key);
    const current = this.get(key, namespace, name);
    if (preconditions?.uid !== undefined && preconditions.uid !== current.metadata.uid)
      throw new StoreError(
        409,
        'Conflict',
        `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${String(current.metadata.uid)}`,
      );
    if (
      preconditions?.resourceVersion !== undefined &&
      preconditions.resourceVersion !== current.metadata.resourceVersion
    )
      throw conflict(r, name);
    this.#bucket(key).delete(nameKey(current.metadata.namespace, name));
    this.#revision += 1;
    const gone = clone(current);
    gone.metadata.resourceVersion = String(this.#revision);
    this.#record({ type: 'DELETED', object: gone, resourceVersion: this.#revision, resource: key });
    return gone;
  }

  /**
   * Events after `resourceVersion` for a watch. Undefined when the version is older than the
   * history (the caller answers 410 Gone).
   */
  eventsSince(key: string, resourceVersion: number, namespace?: string): StoreEvent[] | undefined {
    if (resourceVersion < this.#compactedThrough) return undefined;
    const oldest = this.#history[0]?.resourceVersion;
    if (oldest !== undefined && resourceVersion < oldest - 1 && this.#history.length >= this.#historySize)
      return undefined;
    return this.#history
      .filter((e) => e.resource === key && e.resourceVersion > resourceVersion)
      .filter((e) => namespace === undefined || e.object.metadata.namespace === namespace)
      .map((e) => ({ ...e, object: clone(e.object) }));
  }

  #write(
    key: string,
    r: ResourceInfo,
    current: StoredObject,
    next: StoredObject,
    subresource?: 'status',
  ): StoredObject {
    let result: StoredObject;
    if (subresource === 'status') {
      result = clone(current);
      if (next.status === undefined) delete result.status;
      else result.status = next.status;
    } else {
      result = next;
      result.metadata = {
        ...next.metadata,
        name: current.metadata.name,
        ...(current.metadata.namespace === undefined ? {} : { namespace: current.metadata.namespace }),
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
        generation: current.metadata.generation,
      };
      if (r.hasStatus) {
        if (current.status === undefined) delete result.status;
        else result.status = current.status;
      }
      result.apiVersion = current.apiVersion;
      result.kind = current.kind;
      result = this.#admit(key, r, result);
      if (JSON.stringify(specOf(result)) !== JSON.stringify(specOf(current))) {
        result.metadata.generation = ((current.metadata.generation as number | undefined) ?? 1) + 1;
      }
    }
    // A write that changes nothing is not a new revision (the API server skips no-op updates too).
    const { resourceVersion: _a, ...before } = current.metadata;
    const { resourceVersion: _b, ...after } = result.metadata;
    if (JSON.stringify({ ...current, metadata: before }) === JSON.stringify({ ...result, metadata: after })) {
      return clone(current);
    }
    return this.#commit(key, 'MODIFIED', result);
  }

  #admit(key: string, r: ResourceInfo, object: StoredObject): StoredObject {
    const validate = this.#validators[key];
    if (validate === undefined) return object;
    const { object: admitted, errors } = validate(object);
    if (errors.length > 0) {
      throw new StoreError(
        422,
        'Invalid',
        `${r.kind}.${r.group} "${object.metadata.name}" is invalid: ${errors.join(', ')}`,
        {
          name: object.metadata.name,
          group: r.group,
          kind: r.kind,
          causes: errors.map((message) => ({ message })),
        },
      );
    }
    return admitted;
  }

  #commit(key: string, type: 'ADDED' | 'MODIFIED', object: StoredObject): StoredObject {
    this.#revision += 1;
    object.metadata.resourceVersion = String(this.#revision);
    this.#bucket(key).set(nameKey(object.metadata.namespace, object.metadata.name), object);
    this.#record({ type, object: clone(object), resourceVersion: this.#revision, resource: key });
    return clone(object);
  }

  #record(event: StoreEvent): void {
    this.#history.push(event);
    if (this.#history.length > this.#historySize) {
      const dropped = this.#history.shift();
      if (dropped !== undefined) this.#compactedThrough = dropped.resourceVersion;
    }
    for (const listener of this.#listeners) listener({ ...event, object: clone(event.object) });
  }

  #bucket(key: string): Map<string, StoredObject> {
    let bucket = this.#objects.get(key);
    if (bucket === undefined) {
      bucket = new Map();
      this.#objects.set(key, bucket);
    }
    return bucket;
  }
}

function conflict(r: ResourceInfo, name: string): StoreError {
  return new StoreError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${r.plural}${r.group ? `.${r.group}` : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: r.group, kind: r.plural },
  );
}

function specOf(object: StoredObject): unknown {
  const { metadata: _m, status: _s, ...rest } = object;
  return rest;
}

const nameKey = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;
const objectKey = (o: StoredObject) => nameKey(o.metadata.namespace, o.metadata.name);

export function clone<T>(value: T): T {
  return structuredClone(value);
}

/** RFC 7386: objects merge key by key, null deletes, anything else (lists included) replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

/** Equality-based label selectors (`a=b,c!=d,e`), the forms tokenscaler sends. */
export function parseSelector(selector: string | undefined): (labels: Record<string, string>) => boolean {
  if (selector === undefined || selector.trim() === '') return () => true;
  const terms = selector
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  const tests = terms.map((term) => {
    const ne = term.match(/^([^!=]+)!=(.*)$/);
    if (ne) return (l: Record<string, string>) => l[(ne[1] as string).trim()] !== (ne[2] as string).trim();
    const eq = term.match(/^([^!=]+)==?(.*)$/);
    if (eq) return (l: Record<string, string>) => l[(eq[1] as string).trim()] === (eq[2] as string).trim();
    if (term.startsWith('!')) return (l: Record<string, string>) => !(term.slice(1) in l);
    return (l: Record<string, string>) => term in l;
  });
  return (labels) => tests.every((t) => t(labels));
}
