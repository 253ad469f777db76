/**
 * @module api/catalog
 *
 * What the API serves: the API groups and the four metrics of DESIGN.md "Serving the target", each
 * read from a scaler's latest `Decision`. Names are lower-case because client-go lowercases the
 * external metric name in the URL (reference/external-metrics-contract.md §1.1, pitfall 2).
 */
import type { Decision } from '../core/decision.ts';

export const EXTERNAL_GROUP = 'external.metrics.k8s.io';
export const EXTERNAL_VERSION = 'v1beta1';
export const EXTERNAL_GROUP_VERSION = `${EXTERNAL_GROUP}/${EXTERNAL_VERSION}`;

export const CUSTOM_GROUP = 'custom.metrics.k8s.io';
export const CUSTOM_VERSION = 'v1beta2';
export const CUSTOM_GROUP_VERSION = `${CUSTOM_GROUP}/${CUSTOM_VERSION}`;

/** The REST-mapped GroupResource the HPA puts in an Object metric path for a TokenScaler. */
export const SCALER_RESOURCE = 'tokenscalers.tokenscaler.dev';
export const SCALER_KIND = 'TokenScaler';
export const SCALER_API_VERSION = 'tokenscaler.dev/v1alpha1';

/** Every served item carries this label; an HPA selects its scaler with `matchLabels` on it. */
export const SCALER_NAME_LABEL = 'tokenscaler.dev/name';

export interface ServedMetric {
  name: string;
  description: string;
  /** Undefined means "not measured": the API answers 503 rather than inventing a zero. */
  read: (decision: Decision) => number | undefined;
  /** True when the value is a windowed statistic (served with the demand window as `window`). */
  windowed: boolean;
}

export const SERVED_METRICS: readonly ServedMetric[] = [
  {
    name: 'tokenscaler_desired_replicas',
    description: 'replicas the token demand needs; use with an HPA AverageValue target of 1',
    read: (decision) => decision.desiredReplicas,
    windowed: false,
  },
  {
    name: 'tokenscaler_demand_tokens',
    description: 'windowed percentile of in-flight token demand (never below the current demand)',
    read: (decision) => decision.demandTokens,
    windowed: true,
  },
  {
    name: 'tokenscaler_inflight_tokens',
    description: 'tokens held by requests in flight, projected to completion',
    read: (decision) => decision.inflightTokens,
    windowed: false,
  },
  {
    name: 'tokenscaler_tokens_per_replica',
    description: 'KV-cache tokens one replica holds',
    read: (decision) => decision.tokensPerReplica,
    windowed: false,
  },
];

const BY_NAME = new Map(SERVED_METRICS.map((metric) => [metric.name, metric]));

/** Case-insensitive lookup: `Tokenscaler_Desired_Replicas` finds `tokenscaler_desired_replicas`. */
export function findServedMetric(name: string): ServedMetric | undefined {
  return BY_NAME.get(name.toLowerCase());
}

export function servedMetricNames(): string[] {
  return SERVED_METRICS.map((metric) => metric.name);
}
