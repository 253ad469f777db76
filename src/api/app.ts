/**
 * @module api/app
 *
 * The express application behind the metrics APIs (no listening here: `server.ts` owns the socket).
 * Order of the middleware is the security model:
 * 1. `/healthz`, `/livez`, `/readyz`: open, as kube-apiserver's AlwaysAllowPaths.
 * 2. authentication (401), identity headers stripped whatever the outcome;
 * 3. authorization (403);
 * 4. read-only routes (405 for other methods), 404 Status for anything unknown.
 * Every error body is a `metav1.Status` in `application/json`.
 */
import type { IncomingMessage } from 'node:http';
import type { Express, NextFunction, Request, Response } from 'express';
import express from 'express';
import type { AuthenticationResult, Authorizer, RequestHeaderConfig, UserInfo } from './auth.ts';
import { DEFAULT_REQUEST_HEADER_CONFIG, requestAttributes, stripIdentityHeaders } from './auth.ts';
import { CUSTOM_GROUP, EXTERNAL_GROUP } from './catalog.ts';
import type { DecisionStore } from './decision-store.ts';
import { failureAnswer, forbiddenAnswer } from './failures.ts';
import type { ApiMetrics, RouteLabel } from './metrics.ts';
import { apiGroup, apiGroupList, customDiscovery, externalDiscovery } from './payloads.ts';
import { queryCustomMetric, queryExternalMetric, queryKeda } from './queries.ts';
import type { StatusCode } from './status.ts';
import { statusBody } from './status.ts';

/** Structured logger; the controller's JSON logger fits (same shape as reconcile/ports Logger). */
export interface ApiLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface ApiAppDeps {
  store: DecisionStore;
  /** Who is calling: decided from the connection (TLS peer) and the request headers. */
  authenticate: (request: IncomingMessage) => AuthenticationResult;
  authorizer: Authorizer;
  readiness: () => Readiness;
  logger: ApiLogger;
  /** Which identity headers to strip (the front-proxy settings in force; they may rotate). */
  requestHeader?: () => RequestHeaderConfig;
  metrics?: ApiMetrics;
  /** True while the server drains: responses ask clients to close their connection. */
  isDraining?: () => boolean;
  /** Clock for rate-limiting rejection logs; Unix milliseconds. */
  nowMs?: () => number;
}

/** One log line per distinct rejection reason per interval: enough to debug, never a flood. */
const REJECTION_LOG_INTERVAL_MS = 60_000;
const REJECTION_LOG_KEYS = 256;

interface Locals {
  user?: UserInfo;
  route?: RouteLabel;
}

const HEALTH_PATHS = new Set(['/healthz', '/livez', '/readyz']);
const READ_METHODS = new Set(['GET', 'HEAD']);

export function createApiApp(deps: ApiAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  // Kubernetes paths are exact: `/APIS/...` is not `/apis/...`.
  app.set('case sensitive routing', true);
  app.set('etag', false);
  // Query strings are read with URLSearchParams (decodes `+` as a space, as the aggregator encodes).
  app.set('query parser', false);
  const requestHeader = deps.requestHeader ?? (() => DEFAULT_REQUEST_HEADER_CONFIG);
  const nowMs = deps.nowMs ?? Date.now;
  // A misconfigured APIService shows up here first ("FailedDiscoveryCheck" on the cluster side).
  const lastRejectionLogMs = new Map<string, number>();
  const logRejection = (reason: string, path: string) => {
    const now = nowMs();
    const last = lastRejectionLogMs.get(reason);
    if (last !== undefined && now - last < REJECTION_LOG_INTERVAL_MS) return;
    if (last === undefined && lastRejectionLogMs.size >= REJECTION_LOG_KEYS) lastRejectionLogMs.clear();
    lastRejectionLogMs.set(reason, now);
    deps.logger.warn('metrics API request rejected (401)', {
      reason,
      path,
      repeatsSuppressedForSeconds: REJECTION_LOG_INTERVAL_MS / 1000,
    });
  };
  const externalDiscoveryBody = JSON.stringify(externalDiscovery());
  const customDiscoveryBody = JSON.stringify(customDiscovery());
  const groupListBody = JSON.stringify(apiGroupList());

  app.use((_request: Request, response: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    if (deps.isDraining?.() === true) response.setHeader('Connection', 'close');
    response.on('finish', () => {
      const route = (response.locals as Locals).route ?? 'other';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      deps.metrics?.observeRequest(route, response.statusCode, seconds);
    });
    next();
  });

  // 1. Health: no authentication, plain text as kube-apiserver answers kubelet probes.
  app.get(['/healthz', '/livez'], (_request, response) => {
    setRoute(response, 'health');
    response.type('text/plain').send('ok');
  });
  app.get('/readyz', (_request, response) => {
    setRoute(response, 'health');
    const readiness = deps.readiness();
    if (readiness.ready) response.type('text/plain').send('ok');
    else response.status(503).type('text/plain').send(`not ready: ${readiness.reason}\n`);
  });

  // 2. Authentication.
  app.use((request: Request, response: Response, next: NextFunction) => {
    if (HEALTH_PATHS.has(request.path)) {
      next();
      return;
    }
    const result = deps.authenticate(request);
    stripIdentityHeaders(request.headers, requestHeader());
    if (!result.ok) {
      setRoute(response, 'unauthenticated');
      logRejection(result.message, request.path);
      sendStatus(response, 401, `Unauthorized: ${result.message}`);
      return;
    }
    (response.locals as Locals).user = result.user;
    next();
  });

  // 3. Authorization.
  app.use(async (request: Request, response: Response, next: NextFunction) => {
    const user = (response.locals as Locals).user;
    if (user === undefined) {
      next();
      return;
    }
    const attributes = requestAttributes(request.method, request.path);
    const decision = await deps.authorizer.authorize(user, attributes);
    if (!decision.allowed) {
      setRoute(response, 'forbidden');
      const answer = forbiddenAnswer(user, attributes, decision.reason);
      sendStatus(response, answer.code, answer.message, answer.details);
      return;
    }
    next();
  });

  // 4. Read-only API.
  app.use((request: Request, response: Response, next: NextFunction) => {
    if (READ_METHODS.has(request.method)) {
      next();
      return;
    }
    setRoute(response, 'other');
    response.setHeader('Allow', 'GET, HEAD');
    sendStatus(
      response,
      405,
      `the server does not allow this method on the requested resource (${request.method})`,
    );
  });

  app.get('/apis', (_request, response) => {
    setRoute(response, 'discovery');
    sendJsonText(response, groupListBody);
  });
  for (const group of [EXTERNAL_GROUP, CUSTOM_GROUP]) {
    app.get(`/apis/${group}`, (_request, response) => {
      setRoute(response, 'discovery');
      response.json(apiGroup(group));
    });
  }
  app.get(`/apis/${EXTERNAL_GROUP}/v1beta1`, (_request, response) => {
    setRoute(response, 'discovery');
    sendJsonText(response, externalDiscoveryBody);
  });
  app.get(`/apis/${CUSTOM_GROUP}/v1beta2`, (_request, response) => {
    setRoute(response, 'discovery');
    sendJsonText(response, customDiscoveryBody);
  });

  app.get(`/apis/${EXTERNAL_GROUP}/v1beta1/namespaces/:namespace/:metric`, (request, response) => {
    setRoute(response, 'external');
    const query = searchParams(request);
    const params = request.params as Record<string, string>;
    response.json(
      queryExternalMetric(
        deps.store,
        params['namespace'] ?? '',
        params['metric'] ?? '',
        firstParam(query, 'labelSelector'),
      ),
    );
  });

  app.get(
    `/apis/${CUSTOM_GROUP}/v1beta2/namespaces/:namespace/:resource/:name/:metric`,
    (request, response) => {
      setRoute(response, 'custom');
      const query = searchParams(request);
      const params = request.params as Record<string, string>;
      response.json(
        queryCustomMetric(deps.store, {
          namespace: params['namespace'] ?? '',
          resource: params['resource'] ?? '',
          name: params['name'] ?? '',
          metric: params['metric'] ?? '',
          labelSelector: firstParam(query, 'labelSelector'),
          metricLabelSelector: firstParam(query, 'metricLabelSelector'),
        }),
      );
    },
  );

  app.get('/keda/v1/namespaces/:namespace/tokenscalers/:name', (request, response) => {
    setRoute(response, 'keda');
    const params = request.params as Record<string, string>;
    response.json(queryKeda(deps.store, params['namespace'] ?? '', params['name'] ?? ''));
  });

  // /openapi/v2 and /openapi/v3 fall through here too: kube-aggregator skips a 404 gracefully.
  app.use((request: Request, response: Response) => {
    if ((response.locals as Locals).route === undefined) setRoute(response, 'other');
    sendStatus(
      response,
      404,
      `the server could not find the requested resource (${request.method} ${request.path})`,
    );
  });

  app.use((error: unknown, request: Request, response: Response, _next: NextFunction) => {
    const answer = failureAnswer(error, request.path, deps.logger);
    sendStatus(response, answer.code, answer.message, answer.details);
  });

  return app;
}

function setRoute(response: Response, route: RouteLabel): void {
  (response.locals as Locals).route = route;
}

function sendStatus(
  response: Response,
  code: StatusCode,
  message: string,
  details?: Parameters<typeof statusBody>[2],
): void {
  if (response.headersSent) return;
  response.status(code).json(statusBody(code, message, details));
}

function sendJsonText(response: Response, body: string): void {
  response.type('application/json').send(body);
}

function searchParams(request: Request): URLSearchParams {
  const index = request.originalUrl.indexOf('?');
  return new URLSearchParams(index === -1 ? '' : request.originalUrl.slice(index + 1));
}

/** Go's `url.Values.Get` semantics: the first value of a repeated parameter. */
function firstParam(query: URLSearchParams, name: string): string | undefined {
  return query.get(name) ?? undefined;
}
