/**
 * @module api/metrics
 *
 * Prometheus instruments of the API server, registered on the registry the composition root passes
 * in (never the global one). Labels are bounded: a fixed route set and the HTTP status code.
 */
import type { Registry } from 'prom-client';
import { Counter, Gauge, Histogram } from 'prom-client';

export const ROUTE_LABELS = [
  'health',
  'discovery',
  'external',
  'custom',
  'keda',
  'unauthenticated',
  'forbidden',
  'other',
] as const;
export type RouteLabel = (typeof ROUTE_LABELS)[number];

export interface ApiMetrics {
  observeRequest(route: RouteLabel, statusCode: number, seconds: number): void;
  observeReload(result: 'success' | 'failure'): void;
  setCertificateExpiry(notAfterSeconds: number): void;
}

export function createApiMetrics(registry: Registry): ApiMetrics {
  const requests = new Counter({
    name: 'tokenscaler_api_requests_total',
    help: 'Requests served by the metrics API server, by route and HTTP status code.',
    labelNames: ['route', 'code'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'tokenscaler_api_request_duration_seconds',
    help: 'Time to answer a metrics API request, by route.',
    labelNames: ['route'] as const,
    // Served from memory: sub-millisecond normally; the HPA gives up well before 5 s.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const reloads = new Counter({
    name: 'tokenscaler_api_tls_reloads_total',
    help: 'Reloads of the serving certificate and client CAs after their files changed, by result.',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const expiry = new Gauge({
    name: 'tokenscaler_api_serving_certificate_expiry_timestamp_seconds',
    help: 'notAfter of the serving certificate in use, Unix seconds.',
    registers: [registry],
  });
  return {
    observeRequest(route, statusCode, seconds) {
      requests.inc({ route, code: String(statusCode) });
      duration.observe({ route }, seconds);
    },
    observeReload(result) {
      reloads.inc({ result });
    },
    setCertificateExpiry(notAfterSeconds) {
      expiry.set(notAfterSeconds);
    },
  };
}
