/**
 * @module api/fast-path
 *
 * The reads that clients poll — external metrics (the HPA, through kube-apiserver's aggregator),
 * custom Object metrics and the KEDA endpoint — answered in front of the express app, with the
 * same status codes, headers and bodies, the same authentication and authorization, and the same
 * request metrics. Everything else, and every request whose shape is not the plain common one, is
 * left to express (`createApiRequestListener` runs this first and express when it declines).
 *
 * Why: an HPA read is tiny, so the cost of a request is the HTTP/TLS stack plus whatever runs per
 * request. Express's per-request setup and middleware chain cost about as much as Node's own HTTP
 * handling (bench/README.md, "metrics-api"). Here a request costs a map lookup for its URL, the
 * per-connection peer class, the identity headers, the authorizer, a version check on the store
 * and one write of a body serialised once per store change.
 *
 * Order, as in the express app: authentication (declined here: express answers 401 and logs),
 * authorization (403 here), then the answer. Identity headers are not stripped on this path
 * because nothing reads the request after the answer is written.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { ApiAppDeps } from './app.ts';
import { createApiApp } from './app.ts';
import type { AuthorizationDecision, RequestAttributes, UserInfo } from './auth.ts';
import { requestAttributes } from './auth.ts';
import type { ServedMetric } from './catalog.ts';
import { CUSTOM_GROUP_VERSION, EXTERNAL_GROUP_VERSION, SERVED_METRICS } from './catalog.ts';
import type { DecisionStore, PublishedScaler } from './decision-store.ts';
import type { StatusAnswer } from './failures.ts';
import { failureAnswer, forbiddenAnswer } from './failures.ts';
import type { RouteLabel } from './metrics.ts';
import {
  customMetricValue,
  customMetricValueList,
  externalMetricValue,
  externalMetricValueList,
  kedaBody,
} from './payloads.ts';
import {
  answerCustomMetricQuery,
  answerExternalMetricQuery,
  customMetricScalers,
  externalMetricScalers,
  prepareCustomMetricQuery,
  prepareExternalMetricQuery,
  queryKeda,
} from './queries.ts';
import { statusBody } from './status.ts';

export interface FastPathOptions {
  /**
   * How many distinct URLs keep their parsed route, prepared query and last answer (between this
   * and twice this; those unused longest are dropped; 0 keeps none). An HPA reads one URL, so the
   * default covers a few thousand scalers.
   */
  routeCacheEntries?: number;
}

/** Answers the request and returns true, or returns false having written nothing (express answers). */
export type FastPath = (request: IncomingMessage, response: ServerResponse) => boolean;

export const DEFAULT_ROUTE_CACHE_ENTRIES = 4096;
/**
 * Largest answer kept per route. An HPA's pinned read is about 250 B, a KEDA body about 450 B;
 * with at most 2 x 4,096 routes the kept answers stay under 32 MiB even when every URL is a large
 * one, and take about 1 MiB for 4,000 pinned reads.
 */
const MAX_CACHED_ANSWER_BYTES = 4096;

const EXTERNAL_PREFIX = `/apis/${EXTERNAL_GROUP_VERSION}/namespaces/`;
const CUSTOM_PREFIX = `/apis/${CUSTOM_GROUP_VERSION}/namespaces/`;
const KEDA_PREFIX = '/keda/v1/namespaces/';
/**
 * Characters a path on this path may hold. Anything else (spaces, `#`, `;`, ...) goes to express,
 * whose URL parsing then decides; so does a trailing slash or an empty segment.
 */
const PLAIN_PATH = /^[A-Za-z0-9\-._~%*/]+$/;
/** express's `res.json` over a string body. */
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

interface CachedAnswer {
  /** `store.version()` the answer was built at. */
  version: number;
  code: number;
  body: Buffer;
}

interface Route {
  label: Extract<RouteLabel, 'external' | 'custom' | 'keda'>;
  /** For logs, as express's `request.path` gives it. */
  pathname: string;
  /** What the authorizer sees, derived as the express app derives it. */
  attributes: RequestAttributes;
  /** The JSON body from the store now; throws as the query functions do. */
  answer: (store: DecisionStore, renderings: Renderings | undefined) => string;
  cached: CachedAnswer | undefined;
}

/** Runs `make` once; later calls return its result or throw its error again. */
function once<T>(make: () => T): () => T {
  let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  return () => {
    if (outcome === undefined) {
      try {
        outcome = { ok: true, value: make() };
      } catch (error) {
        outcome = { ok: false, error };
      }
    }
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  };
}

/** express's param decoding; undefined where it would fail (express then answers 400). */
function decodeSegment(segment: string): string | undefined {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Go's `url.Values.Get`: the first value of a repeated parameter. */
function queryParam(query: string, name: string): string | undefined {
  return query === '' ? undefined : (new URLSearchParams(query).get(name) ?? undefined);
}

/**
 * The route of a GET for one of the polled reads, as the express routes match it (case-sensitive
 * literals on the raw path, parameters percent-decoded), or undefined to leave it to express.
 */
export function parseFastRoute(url: string): Route | undefined {
  const mark = url.indexOf('?');
  const pathname = mark === -1 ? url : url.slice(0, mark);
  const query = mark === -1 ? '' : url.slice(mark + 1);
  const label: Route['label'] | undefined = pathname.startsWith(EXTERNAL_PREFIX)
    ? 'external'
    : pathname.startsWith(CUSTOM_PREFIX)
      ? 'custom'
      : pathname.startsWith(KEDA_PREFIX)
        ? 'keda'
        : undefined;
  if (label === undefined || !PLAIN_PATH.test(pathname)) return undefined;
  const prefix = label === 'external' ? EXTERNAL_PREFIX : label === 'custom' ? CUSTOM_PREFIX : KEDA_PREFIX;
  const raw = pathname.slice(prefix.length).split('/');
  const params: string[] = [];
  for (const segment of raw) {
    const decoded = segment === '' ? undefined : decodeSegment(segment);
    if (decoded === undefined) return undefined;
    params.push(decoded);
  }
  let answer: Route['answer'];
  if (label === 'external') {
    const [namespace, metric] = params;
    if (params.length !== 2 || namespace === undefined || metric === undefined) return undefined;
    const prepared = once(() =>
      prepareExternalMetricQuery(namespace, metric, queryParam(query, 'labelSelector')),
    );
    answer = (store, renderings) => {
      const query = prepared();
      const scalers = externalMetricScalers(store, query);
      return (
        renderings?.externalList(query.metric, scalers) ??
        JSON.stringify(answerExternalMetricQuery(store, query))
      );
    };
  } else if (label === 'custom') {
    const [namespace, resource, name, metric] = params;
    if (
      params.length !== 4 ||
      namespace === undefined ||
      resource === undefined ||
      name === undefined ||
      metric === undefined
    ) {
      return undefined;
    }
    const prepared = once(() =>
      prepareCustomMetricQuery({
        namespace,
        resource,
        name,
        metric,
        labelSelector: queryParam(query, 'labelSelector'),
        metricLabelSelector: queryParam(query, 'metricLabelSelector'),
      }),
    );
    answer = (store, renderings) => {
      const query = prepared();
      const scalers = customMetricScalers(store, query);
      return (
        renderings?.customList(query.metric, scalers) ?? JSON.stringify(answerCustomMetricQuery(store, query))
      );
    };
  } else {
    const [namespace, , name] = params;
    // `tokenscalers` is a literal of the route: matched on the raw segment, as express does.
    if (params.length !== 3 || raw[1] !== 'tokenscalers' || namespace === undefined || name === undefined) {
      return undefined;
    }
    answer = (store, renderings) => {
      const scaler = store.get(namespace, name);
      const rendered = scaler === undefined ? undefined : renderings?.keda(scaler);
      return rendered ?? JSON.stringify(queryKeda(store, namespace, name));
    };
  }
  return { label, pathname, attributes: requestAttributes('GET', pathname), answer, cached: undefined };
}

/** Where a scaler's serialised items sit: external items, then custom items, by metric; then KEDA. */
const METRIC_SLOT = new Map<ServedMetric, number>(SERVED_METRICS.map((metric, index) => [metric, index]));
const CUSTOM_OFFSET = SERVED_METRICS.length;
const KEDA_SLOT = 2 * SERVED_METRICS.length;
/** A slot not serialised yet; `undefined` in a slot means "cannot be served, ask the generic path". */
const PENDING = null;

/** A list's JSON split around its items, e.g. `{"kind":...,"items":[` and `]}`. */
function listParts(emptyList: object): { head: string; tail: string } {
  const json = JSON.stringify(emptyList);
  const at = json.lastIndexOf('[]');
  return { head: json.slice(0, at + 1), tail: json.slice(at + 1) };
}

// An empty list carries nothing of the metric, so one split serves every metric.
const EXTERNAL_LIST = listParts(externalMetricValueList(SERVED_METRICS[0] as ServedMetric, []));
const CUSTOM_LIST = listParts(customMetricValueList(SERVED_METRICS[0] as ServedMetric, []));

/** `JSON.stringify(build())`, or undefined when building throws (the generic path then reports it). */
function serialised(build: () => unknown): string | undefined {
  try {
    return JSON.stringify(build());
  } catch {
    return undefined;
  }
}

function renderSlot(scaler: PublishedScaler, slot: number): string | undefined {
  const decision = scaler.decision;
  if (decision === undefined) return undefined;
  if (slot === KEDA_SLOT) return serialised(() => kedaBody(scaler, decision));
  const custom = slot >= CUSTOM_OFFSET;
  const metric = SERVED_METRICS[custom ? slot - CUSTOM_OFFSET : slot];
  const value = metric?.read(decision);
  if (metric === undefined || value === undefined) return undefined;
  const served = { scaler, decision, value };
  return serialised(() => (custom ? customMetricValue(metric, served) : externalMetricValue(metric, served)));
}

/**
 * Serialised items per published scaler, each made the first time it is read. The answer cache
 * of a route goes stale whenever any scaler is published (the store has one version); these stay
 * valid until their own scaler is published again, so a read after other scalers changed
 * concatenates strings instead of building and stringifying objects. Items are `JSON.stringify`
 * of the same builders the express routes use, and `JSON.stringify` of a list is its head, its
 * items' JSON joined by commas, and its tail: the bodies are byte for byte the same. Keyed by
 * entry: a store with a version hands out a new entry on every change, and dropped entries are
 * collected.
 */
export class Renderings {
  private readonly byScaler = new WeakMap<PublishedScaler, Array<string | undefined | null>>();

  private slot(scaler: PublishedScaler, slot: number): string | undefined {
    let slots = this.byScaler.get(scaler);
    if (slots === undefined) {
      slots = new Array<string | undefined | null>(KEDA_SLOT + 1).fill(PENDING);
      this.byScaler.set(scaler, slots);
    }
    let json = slots[slot];
    if (json === PENDING) {
      json = renderSlot(scaler, slot);
      slots[slot] = json;
    }
    return json;
  }

  /** The ExternalMetricValueList body, or undefined when a scaler's item cannot be served. */
  externalList(metric: ServedMetric, scalers: readonly PublishedScaler[]): string | undefined {
    return this.list(EXTERNAL_LIST, scalers, METRIC_SLOT.get(metric));
  }

  /** The MetricValueList body, or undefined when a scaler's item cannot be served. */
  customList(metric: ServedMetric, scalers: readonly PublishedScaler[]): string | undefined {
    const slot = METRIC_SLOT.get(metric);
    return this.list(CUSTOM_LIST, scalers, slot === undefined ? undefined : CUSTOM_OFFSET + slot);
  }

  /** The KEDA body, or undefined when the scaler has nothing to serve. */
  keda(scaler: PublishedScaler): string | undefined {
    return this.slot(scaler, KEDA_SLOT);
  }

  private list(
    parts: { head: string; tail: string },
    scalers: readonly PublishedScaler[],
    slot: number | undefined,
  ): string | undefined {
    if (slot === undefined) return undefined;
    let body = parts.head;
    for (let index = 0; index < scalers.length; index += 1) {
      const json = this.slot(scalers[index] as PublishedScaler, slot);
      if (json === undefined) return undefined;
      body = index === 0 ? body + json : `${body},${json}`;
    }
    return body + parts.tail;
  }
}

/**
 * A bounded map of recently used routes, in two generations: lookups hit the current one (one map
 * read); a route found only in the previous generation moves up. When the current generation is
 * full it becomes the previous one, so what was not used during a whole generation is dropped.
 * Between `capacity` and `2 x capacity` routes are kept.
 */
class RouteCache {
  private current = new Map<string, Route>();
  private previous = new Map<string, Route>();
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get(url: string): Route | undefined {
    return this.current.get(url) ?? this.previous.get(url);
  }

  remember(url: string, route: Route): void {
    if (this.capacity <= 0 || this.current.get(url) === route) return;
    if (this.current.size >= this.capacity) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(url, route);
    this.previous.delete(url);
  }
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Headers as express's `res.json` sets them (after `Connection: close` while draining). */
function writeJson(response: ServerResponse, code: number, body: Buffer, draining: boolean): void {
  response.writeHead(
    code,
    draining
      ? ['Connection', 'close', 'Content-Type', JSON_CONTENT_TYPE, 'Content-Length', String(body.length)]
      : ['Content-Type', JSON_CONTENT_TYPE, 'Content-Length', String(body.length)],
  );
  response.end(body);
}

function statusBytes(answer: StatusAnswer): Buffer {
  return Buffer.from(JSON.stringify(statusBody(answer.code, answer.message, answer.details)));
}

export function createFastPath(deps: ApiAppDeps, options: FastPathOptions = {}): FastPath {
  const routes = new RouteCache(options.routeCacheEntries ?? DEFAULT_ROUTE_CACHE_ENTRIES);
  // Only a store with a version promises entries that never change in place (see DecisionStore).
  const renderings = deps.store.version === undefined ? undefined : new Renderings();

  const finish = (
    response: ServerResponse,
    label: RouteLabel,
    code: number,
    body: Buffer,
    draining: boolean,
    started: bigint,
  ): void => {
    writeJson(response, code, body, draining);
    // Measured once the answer is handed to the socket; express measures at 'finish', a tick
    // later, which differs by far less than the histogram's smallest bucket (0.5 ms).
    deps.metrics?.observeRequest(label, code, Number(process.hrtime.bigint() - started) / 1e9);
  };

  const answer = (
    route: Route,
    user: UserInfo,
    decision: AuthorizationDecision,
    response: ServerResponse,
    draining: boolean,
    started: bigint,
  ): void => {
    if (!decision.allowed) {
      const forbidden = forbiddenAnswer(user, route.attributes, decision.reason);
      finish(response, 'forbidden', forbidden.code, statusBytes(forbidden), draining, started);
      return;
    }
    const version = deps.store.version?.();
    const cached = route.cached;
    if (cached !== undefined && version !== undefined && cached.version === version) {
      finish(response, route.label, cached.code, cached.body, draining, started);
      return;
    }
    let code: number;
    let body: Buffer;
    try {
      body = Buffer.from(route.answer(deps.store, renderings));
      code = 200;
    } catch (error) {
      const failure = failureAnswer(error, route.pathname, deps.logger);
      code = failure.code;
      body = statusBytes(failure);
    }
    // 5xx answers are not kept: each one is logged (failureAnswer) and may be transient. Large
    // answers (a selector over a big namespace) are rebuilt rather than held.
    if (version !== undefined && code < 500 && body.length <= MAX_CACHED_ANSWER_BYTES) {
      route.cached = { version, code, body };
    }
    finish(response, route.label, code, body, draining, started);
  };

  const failed = (
    route: Route,
    error: unknown,
    response: ServerResponse,
    draining: boolean,
    started: bigint,
  ): void => {
    // The authorizer failed: no route is known yet, as in express.
    const failure = failureAnswer(error, route.pathname, deps.logger);
    finish(response, 'other', failure.code, statusBytes(failure), draining, started);
  };

  return (request, response) => {
    if (request.method !== 'GET') return false;
    const url = request.url ?? '';
    const route = routes.get(url) ?? parseFastRoute(url);
    if (route === undefined) return false;
    const started = process.hrtime.bigint();
    const authentication = deps.authenticate(request);
    if (!authentication.ok) return false;
    // Only authenticated callers grow (or refresh) the cache.
    routes.remember(url, route);
    const draining = deps.isDraining?.() === true;
    const user = authentication.user;
    let decision: AuthorizationDecision | PromiseLike<AuthorizationDecision>;
    try {
      decision = deps.authorizer.authorize(user, route.attributes);
    } catch (error) {
      failed(route, error, response, draining, started);
      return true;
    }
    if (isPromiseLike(decision)) {
      decision.then(
        (settled) => answer(route, user, settled, response, draining, started),
        (error: unknown) => failed(route, error, response, draining, started),
      );
    } else {
      answer(route, user, decision, response, draining, started);
    }
    return true;
  };
}

/**
 * The server's request listener: the fast path for the polled reads, the express app for the rest.
 * Both are built from the same dependencies, so they agree on who may read what.
 */
export function createApiRequestListener(deps: ApiAppDeps, options: FastPathOptions = {}): RequestListener {
  const app = createApiApp(deps);
  const fast = createFastPath(deps, options);
  return (request, response) => {
    if (!fast(request, response)) app(request, response);
  };
}
