/**
 * @module A loopback fake Kubernetes API server that speaks the REST and watch protocol, so the real
 * `@kubernetes/client-node` and the real `kubectl` can be tested without a cluster (no official JS
 * fake exists, client-node #841; this follows what client-node's own watch tests do).
 *
 * What it speaks: discovery (`/api`, `/apis`, group versions, `/version`), get/list/create/replace/
 * merge-patch/delete on the resources of fake-apiserver-store.ts, the `status` and `scale`
 * subresources, label selectors, server-side Table output from a CRD's printer columns (what
 * `kubectl get` asks for), and watches as newline-delimited JSON event streams (resourceVersion
 * resume, `timeoutSeconds`, bookmarks, an ERROR event with a 410 Status for a compacted version).
 *
 * Faults for tests: failing requests with any status (500, 409, 410, 429...), cutting every open
 * watch stream on a period, answering the next watches with 410 Gone, and a request log to assert on.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  apiVersionOf,
  applyMergePatch,
  FakeStore,
  type ResourceInfo,
  resourceKey,
  type StoredObject,
  StoreError,
} from './fake-apiserver-store.ts';

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}

export interface InjectedFailure {
  method?: string;
  /** Substring of the path (without the query). */
  path?: string | RegExp;
  /** Only watch requests (true) or only non-watch requests (false). */
  watch?: boolean;
  status: number;
  reason?: string;
  /** How many matching requests fail; Infinity for all. */
  times: number;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  watch: boolean;
  status: number;
  /** The bearer token the client sent (tells apart clients that use different kubeconfigs). */
  token: string | undefined;
  atMs: number;
}

export interface FakeApiServerOptions {
  store?: FakeStore;
  /** Printer columns per resource key (e.g. from the generated CRD). */
  printerColumns?: Record<string, PrinterColumn[]>;
  /** A BOOKMARK event this often on watches that allow bookmarks; 0 turns them off. */
  bookmarkIntervalMs?: number;
  nowMs?: () => number;
}

export interface FakeApiServer {
  url: string;
  store: FakeStore;
  requests: RequestRecord[];
  /** Fails matching requests (first matching rule wins). */
  fail(rule: InjectedFailure): void;
  clearFailures(): void;
  /** Cuts every open watch stream now (abrupt close, no ERROR event). */
  cutWatches(): number;
  /** Cuts every open watch stream every `periodMs` until called with 0. */
  cutWatchesEvery(periodMs: number): void;
  /** The next `count` watches get an ERROR event with a 410 Status at once. */
  goneNextWatches(count: number): void;
  openWatches(): number;
  /** A kubeconfig (YAML) pointing at this server; `token` identifies the client in `requests`. */
  kubeconfig(namespace?: string, token?: string): string;
  close(): Promise<void>;
}

export async function startFakeApiServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const store = options.store ?? new FakeStore();
  const nowMs = options.nowMs ?? Date.now;
  const failures: InjectedFailure[] = [];
  const requests: RequestRecord[] = [];
  const watches = new Set<ServerResponse>();
  let goneWatches = 0;
  let cutTimer: NodeJS.Timeout | undefined;
  const bookmarkMs = options.bookmarkIntervalMs ?? 1000;

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendStatus(res, new StoreError(500, 'InternalError', String(error)));
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const query = Object.fromEntries(url.searchParams.entries());
    const isWatch = query.watch === 'true' || query.watch === '1';
    const method = req.method ?? 'GET';
    const record: RequestRecord = {
      method,
      path: url.pathname,
      query,
      contentType: req.headers['content-type'],
      watch: isWatch,
      status: 200,
      token: req.headers.authorization?.replace(/^Bearer\s+/i, ''),
      atMs: nowMs(),
    };
    requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    const body = await readBody(req);

    const failure = failures.find(
      (f) =>
        f.times > 0 &&
        (f.method === undefined || f.method === method) &&
        (f.watch === undefined || f.watch === isWatch) &&
        (f.path === undefined ||
          (typeof f.path === 'string' ? url.pathname.includes(f.path) : f.path.test(url.pathname))),
    );
    if (failure !== undefined) {
      failure.times -= 1;
      sendStatus(
        res,
        new StoreError(
          failure.status,
          failure.reason ?? reasonOf(failure.status),
          `injected failure ${failure.status}`,
        ),
      );
      return;
    }

    const discovery = discover(url.pathname);
    if (discovery !== undefined) {
      sendJson(res, 200, discovery);
      return;
    }
    const route = parseRoute(url.pathname);
    if (route === undefined) {
      sendStatus(res, new StoreError(404, 'NotFound', 'the server could not find the requested resource'));
      return;
    }
    const key = resourceKey(route.group, route.version, route.plural);
    try {
      const r = store.resource(key);
      if (route.name === undefined) {
        if (method === 'GET' && isWatch) return serveWatch(res, key, route.namespace, query);
        if (method === 'GET') {
          const list = store.list(key, route.namespace, query.labelSelector);
          if (wantsTable(req)) return sendJson(res, 200, toTable(r, list.items, list.resourceVersion));
          return sendJson(res, 200, {
            apiVersion: apiVersionOf(r),
            kind: `${r.kind}List`,
            metadata: { resourceVersion: list.resourceVersion },
            items: list.items,
          });
        }
        if (method === 'POST') return sendJson(res, 201, store.create(key, route.namespace, parseJson(body)));
        throw new StoreError(405, 'MethodNotAllowed', `${method} is not allowed on a collection`);
      }
      if (route.subresource === 'scale') {
        if (!r.hasScale) throw new StoreError(404, 'NotFound', `${r.plural} has no scale subresource`);
        if (method === 'GET') return sendJson(res, 200, scaleOf(store.get(key, route.namespace, route.name)));
        if (method === 'PATCH' || method === 'PUT') {
          const patch = parseJson(body) as { spec?: { replicas?: number } };
          const replicas =
            method === 'PATCH' && req.headers['content-type']?.includes('json-patch')
              ? (patch as unknown as Array<{ path: string; value: number }>).find(
                  (op) => op.path === '/spec/replicas',
                )?.value
              : patch.spec?.replicas;
          const updated = store.mergePatch(key, route.namespace, route.name, { spec: { replicas } });
          return sendJson(res, 200, scaleOf(updated));
        }
        throw new StoreError(405, 'MethodNotAllowed', `${method} is not allowed on scale`);
      }
      const sub = route.subresource === 'status' ? ('status' as const) : undefined;
      if (route.subresource !== undefined && sub === undefined)
        throw new StoreError(404, 'NotFound', `unknown subresource ${route.subresource}`);
      if (sub === 'status' && !r.hasStatus)
        throw new StoreError(404, 'NotFound', `${r.plural} has no status subresource`);
      switch (method) {
        case 'GET': {
          const object = store.get(key, route.namespace, route.name);
          if (wantsTable(req)) return sendJson(res, 200, toTable(r, [object], String(store.revision)));
          return sendJson(res, 200, object);
        }
        case 'PUT':
          return sendJson(res, 200, store.replace(key, route.namespace, route.name, parseJson(body), sub));
        case 'PATCH': {
          const contentType = req.headers['content-type'] ?? '';
          if (contentType.includes('json-patch'))
            throw new StoreError(415, 'UnsupportedMediaType', 'the fake serves merge patches only');
          return sendJson(res, 200, store.mergePatch(key, route.namespace, route.name, parseJson(body), sub));
        }
        case 'DELETE': {
          const options =
            body.length > 0
              ? (parseJson(body) as { preconditions?: { uid?: string; resourceVersion?: string } })
              : {};
          const gone = store.delete(key, route.namespace, route.name, options.preconditions);
          return sendJson(res, 200, gone);
        }
        default:
          throw new StoreError(405, 'MethodNotAllowed', `${method} is not allowed`);
      }
    } catch (error) {
      if (error instanceof StoreError) return sendStatus(res, error);
      throw error;
    }
  }

  function serveWatch(
    res: ServerResponse,
    key: string,
    namespace: string | undefined,
    query: Record<string, string>,
  ) {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const write = (type: string, object: unknown) => {
      if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    if (goneWatches > 0) {
      goneWatches -= 1;
      write('ERROR', new StoreError(410, 'Expired', 'too old resource version (injected)').toStatus());
      res.end();
      return;
    }
    const rvParam = query.resourceVersion;
    if (rvParam === undefined || rvParam === '' || rvParam === '0') {
      for (const object of store.list(key, namespace).items) write('ADDED', object);
    } else {
      const since = store.eventsSince(key, Number(rvParam), namespace);
      if (since === undefined) {
        write(
          'ERROR',
          new StoreError(
            410,
            'Expired',
            `too old resource version: ${rvParam} (${store.revision})`,
          ).toStatus(),
        );
        res.end();
        return;
      }
      for (const event of since) write(event.type, event.object);
    }
    watches.add(res);
    const unsubscribe = store.subscribe((event) => {
      if (event.resource !== key) return;
      if (namespace !== undefined && event.object.metadata.namespace !== namespace) return;
      write(event.type, event.object);
    });
    const timers: NodeJS.Timeout[] = [];
    const timeoutSeconds = Number(query.timeoutSeconds ?? '0');
    if (timeoutSeconds > 0) timers.push(setTimeout(() => res.end(), timeoutSeconds * 1000));
    if (query.allowWatchBookmarks === 'true' && bookmarkMs > 0) {
      const r = store.resource(key);
      timers.push(
        setInterval(
          () =>
            write('BOOKMARK', {
              apiVersion: apiVersionOf(r),
              kind: r.kind,
              metadata: { resourceVersion: String(store.revision) },
            }),
          bookmarkMs,
        ),
      );
    }
    res.on('close', () => {
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      watches.delete(res);
    });
  }

  function scaleOf(object: StoredObject): Record<string, unknown> {
    const spec = (object.spec ?? {}) as {
      replicas?: number;
      selector?: { matchLabels?: Record<string, string> };
    };
    const status = (object.status ?? {}) as { replicas?: number };
    const labels = spec.selector?.matchLabels ?? {};
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: object.metadata.name,
        namespace: object.metadata.namespace,
        uid: object.metadata.uid,
        resourceVersion: object.metadata.resourceVersion,
        creationTimestamp: object.metadata.creationTimestamp,
      },
      spec: { replicas: spec.replicas ?? 1 },
      status: {
        replicas: status.replicas ?? 0,
        selector: Object.keys(labels)
          .sort()
          .map((k) => `${k}=${labels[k]}`)
          .join(','),
      },
    };
  }

  function toTable(r: ResourceInfo, items: StoredObject[], resourceVersion: string): Record<string, unknown> {
    const columns = options.printerColumns?.[resourceKey(r.group, r.version, r.plural)] ?? [
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ];
    return {
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      metadata: { resourceVersion },
      columnDefinitions: [
        {
          name: 'Name',
          type: 'string',
          format: 'name',
          description: 'Name must be unique within a namespace.',
          priority: 0,
        },
        ...columns.map((c) => ({
          name: c.name,
          type: c.type,
          format: c.format ?? '',
          description: c.description ?? '',
          priority: c.priority ?? 0,
        })),
      ],
      rows: items.map((item) => ({
        cells: [
          item.metadata.name,
          ...columns.map((c) => {
            const value = evaluateJsonPath(item, c.jsonPath);
            if (value === undefined) return null;
            if (c.type === 'date' && typeof value === 'string') return humanAge(nowMs() - Date.parse(value));
            return value;
          }),
        ],
        object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: item.metadata },
      })),
    };
  }

  function discover(pathname: string): unknown {
    const all = [...store.resources.values()];
    if (pathname === '/version')
      return { major: '1', minor: '33', gitVersion: 'v1.33.0-fake', platform: 'linux/amd64' };
    if (pathname === '/api')
      return {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }],
      };
    if (pathname === '/apis') {
      const groups = new Map<string, string[]>();
      for (const r of all)
        if (r.group !== '') groups.set(r.group, [...new Set([...(groups.get(r.group) ?? []), r.version])]);
      return {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: [...groups].map(([name, versions]) => ({
          name,
          versions: versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
          preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
        })),
      };
    }
    const m = pathname.match(/^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/?$/);
    if (m === null) return undefined;
    const group = m[2] ?? '';
    const version = (m[1] ?? m[3]) as string;
    const resources = all.filter((r) => r.group === group && r.version === version);
    if (resources.length === 0) return undefined;
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: group === '' ? version : `${group}/${version}`,
      resources: resources.flatMap((r) => [
        {
          name: r.plural,
          singularName: r.singular,
          namespaced: r.namespaced,
          kind: r.kind,
          verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
          ...(r.shortNames ? { shortNames: r.shortNames } : {}),
          ...(r.categories ? { categories: r.categories } : {}),
        },
        ...(r.hasStatus
          ? [
              {
                name: `${r.plural}/status`,
                singularName: '',
                namespaced: r.namespaced,
                kind: r.kind,
                verbs: ['get', 'patch', 'update'],
              },
            ]
          : []),
        ...(r.hasScale
          ? [
              {
                name: `${r.plural}/scale`,
                singularName: '',
                namespaced: r.namespaced,
                group: 'autoscaling',
                version: 'v1',
                kind: 'Scale',
                verbs: ['get', 'patch', 'update'],
              },
            ]
          : []),
      ]),
    };
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  const api: FakeApiServer = {
    url,
    store,
    requests,
    fail: (rule) => failures.push({ ...rule }),
    clearFailures: () => {
      failures.length = 0;
    },
    cutWatches: () => {
      const n = watches.size;
      for (const w of watches) w.destroy();
      return n;
    },
    cutWatchesEvery: (periodMs) => {
      if (cutTimer !== undefined) clearInterval(cutTimer);
      cutTimer = periodMs > 0 ? setInterval(() => api.cutWatches(), periodMs) : undefined;
    },
    goneNextWatches: (count) => {
      goneWatches = count;
    },
    openWatches: () => watches.size,
    kubeconfig: (namespace = 'default', token = 'fake-token') =>
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${url}`,
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: fake',
        '  user:',
        `    token: ${token}`,
        'contexts:',
        '- name: fake',
        '  context:',
        '    cluster: fake',
        '    user: fake',
        `    namespace: ${namespace}`,
        'current-context: fake',
        '',
      ].join('\n'),
    close: async () => {
      if (cutTimer !== undefined) clearInterval(cutTimer);
      for (const w of watches) w.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}

interface Route {
  group: string;
  version: string;
  namespace: string | undefined;
  plural: string;
  name: string | undefined;
  subresource: string | undefined;
}

function parseRoute(pathname: string): Route | undefined {
  const parts = pathname
    .split('/')
    .filter((p) => p !== '')
    .map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    version = parts[1] as string;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1] as string;
    version = parts[2] as string;
    rest = parts.slice(3);
  } else return undefined;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural, name, subresource] = rest;
  if (plural === undefined) return undefined;
  return { group, version, namespace, plural, name, subresource };
}

function wantsTable(req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').includes('as=Table');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(body: string): StoredObject {
  try {
    return JSON.parse(body) as StoredObject;
  } catch (error) {
    throw new StoreError(400, 'BadRequest', `the body is not JSON: ${String(error)}`);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendStatus(res: ServerResponse, error: StoreError): void {
  sendJson(res, error.status, error.toStatus());
}

function reasonOf(status: number): string {
  return (
    (
      {
        409: 'Conflict',
        410: 'Expired',
        404: 'NotFound',
        403: 'Forbidden',
        422: 'Invalid',
        429: 'TooManyRequests',
        503: 'ServiceUnavailable',
      } as Record<number, string>
    )[status] ?? 'InternalError'
  );
}

/**
 * The JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[*].b` and `.a[?(@.k=="v")].b`. The
 * API server wraps a column's path in `{...}`; the first match is the cell.
 */
export function evaluateJsonPath(object: unknown, path: string): unknown {
  const tokens = path.match(/\.[A-Za-z0-9_-]+|\[[^\]]*\]/g) ?? [];
  let values: unknown[] = [object];
  for (const token of tokens) {
    const next: unknown[] = [];
    for (const value of values) {
      if (value === null || value === undefined) continue;
      if (token.startsWith('.')) {
        const v = (value as Record<string, unknown>)[token.slice(1)];
        if (v !== undefined) next.push(v);
      } else if (token === '[*]') {
        if (Array.isArray(value)) next.push(...value);
      } else if (/^\[\d+\]$/.test(token)) {
        if (Array.isArray(value)) next.push(value[Number(token.slice(1, -1))]);
      } else {
        const f = token.match(/^\[\?\(@\.([A-Za-z0-9_-]+)\s*==\s*["']([^"']*)["']\)\]$/);
        if (f && Array.isArray(value))
          next.push(...value.filter((e) => (e as Record<string, unknown>)?.[f[1] as string] === f[2]));
      }
    }
    values = next;
  }
  return values[0];
}

/** kubectl's age format (k8s.io/apimachinery duration.HumanDuration) for the common ranges. */
export function humanAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

export { applyMergePatch };
