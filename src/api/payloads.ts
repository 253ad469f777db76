/**
 * @module api/payloads
 *
 * JSON bodies of the metrics APIs, shaped as the Go types they decode into
 * (reference/external-metrics-contract.md §1.4 discovery, §2.1 ExternalMetricValueList, §2.3
 * MetricValueList v1beta2). `kind` and `apiVersion` are always present: the custom-metrics client
 * decodes with a universal decoder that requires them, and they cost nothing elsewhere.
 */
import type { Decision } from '../core/decision.ts';
import type { ServedMetric } from './catalog.ts';
import {
  CUSTOM_GROUP,
  CUSTOM_GROUP_VERSION,
  CUSTOM_VERSION,
  EXTERNAL_GROUP,
  EXTERNAL_GROUP_VERSION,
  EXTERNAL_VERSION,
  SCALER_API_VERSION,
  SCALER_KIND,
  SCALER_NAME_LABEL,
  SCALER_RESOURCE,
  SERVED_METRICS,
} from './catalog.ts';
import type { PublishedScaler } from './decision-store.ts';
import { formatQuantity, roundToMilli } from './quantity.ts';

export interface ApiResource {
  name: string;
  singularName: string;
  namespaced: boolean;
  kind: string;
  verbs: string[];
}

export interface ApiResourceList {
  kind: 'APIResourceList';
  apiVersion: 'v1';
  groupVersion: string;
  resources: ApiResource[];
}

/** `GET /apis/external.metrics.k8s.io/v1beta1`: one resource per served metric, never empty. */
export function externalDiscovery(): ApiResourceList {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: EXTERNAL_GROUP_VERSION,
    resources: SERVED_METRICS.map((metric) => ({
      name: metric.name,
      singularName: '',
      namespaced: true,
      kind: 'ExternalMetricValueList',
      verbs: ['get'],
    })),
  };
}

/**
 * `GET /apis/custom.metrics.k8s.io/v1beta2`: `<resource>/<metric>` per served metric, all
 * namespaced, so aggregated discovery can turn them into subresources of one namespaced parent.
 */
export function customDiscovery(): ApiResourceList {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: CUSTOM_GROUP_VERSION,
    resources: SERVED_METRICS.map((metric) => ({
      name: `${SCALER_RESOURCE}/${metric.name}`,
      singularName: '',
      namespaced: true,
      kind: 'MetricValueList',
      verbs: ['get'],
    })),
  };
}

interface GroupVersionForDiscovery {
  groupVersion: string;
  version: string;
}

export interface ApiGroup {
  kind: 'APIGroup';
  apiVersion: 'v1';
  name: string;
  versions: GroupVersionForDiscovery[];
  preferredVersion: GroupVersionForDiscovery;
}

const SERVED_GROUPS: ReadonlyArray<{ group: string; version: string }> = [
  { group: EXTERNAL_GROUP, version: EXTERNAL_VERSION },
  { group: CUSTOM_GROUP, version: CUSTOM_VERSION },
];

export function apiGroup(group: string): ApiGroup | undefined {
  const served = SERVED_GROUPS.find((entry) => entry.group === group);
  if (served === undefined) return undefined;
  const version = { groupVersion: `${served.group}/${served.version}`, version: served.version };
  return {
    kind: 'APIGroup',
    apiVersion: 'v1',
    name: served.group,
    versions: [version],
    preferredVersion: version,
  };
}

/**
 * `GET /apis`: the legacy APIGroupList. kube-aggregator asks for aggregated discovery first; a 200
 * with plain `application/json` makes it fall back to the per-group-version documents (never 503).
 */
export function apiGroupList(): { kind: 'APIGroupList'; apiVersion: 'v1'; groups: ApiGroup[] } {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: SERVED_GROUPS.map(({ group }) => apiGroup(group)).filter((g): g is ApiGroup => g !== undefined),
  };
}

/**
 * `metav1.Time`: RFC 3339 in UTC with second precision, as Go marshals it. `toISOString` always
 * ends in `.sssZ` (here `.000Z`, the seconds being whole): 1787306400 -> "2026-08-21T10:00:00.000Z"
 * -> "2026-08-21T10:00:00Z".
 */
export function formatTimestamp(unixSeconds: number): string {
  const iso = new Date(Math.floor(unixSeconds) * 1000).toISOString();
  return `${iso.slice(0, -5)}Z`;
}

export function scalerLabels(scaler: Pick<PublishedScaler, 'name'>): Record<string, string> {
  return { [SCALER_NAME_LABEL]: scaler.name };
}

/** A scaler with its decision and the metric value read from it, ready to serialise. */
export interface ServedValue {
  scaler: PublishedScaler;
  decision: Decision;
  value: number;
}

export interface ExternalMetricValue {
  metricName: string;
  metricLabels: Record<string, string>;
  timestamp: string;
  window?: number;
  value: string;
}

export interface ExternalMetricValueList {
  kind: 'ExternalMetricValueList';
  apiVersion: typeof EXTERNAL_GROUP_VERSION;
  metadata: Record<string, never>;
  items: ExternalMetricValue[];
}

function windowFor(metric: ServedMetric, scaler: PublishedScaler): number | undefined {
  return metric.windowed ? scaler.demandWindowSeconds : undefined;
}

/** One item of an ExternalMetricValueList; throws `QuantityError` for a value that is no quantity. */
export function externalMetricValue(
  metric: ServedMetric,
  { scaler, decision, value }: ServedValue,
): ExternalMetricValue {
  const window = windowFor(metric, scaler);
  return {
    metricName: metric.name,
    metricLabels: scalerLabels(scaler),
    timestamp: formatTimestamp(decision.decidedAtSeconds),
    ...(window === undefined ? {} : { window }),
    value: formatQuantity(value),
  };
}

export function externalMetricValueList(
  metric: ServedMetric,
  values: readonly ServedValue[],
): ExternalMetricValueList {
  return {
    kind: 'ExternalMetricValueList',
    apiVersion: EXTERNAL_GROUP_VERSION,
    metadata: {},
    items: values.map((value) => externalMetricValue(metric, value)),
  };
}

export interface MetricValue {
  describedObject: { kind: string; namespace: string; name: string; apiVersion: string };
  metric: { name: string; selector: null };
  timestamp: string;
  windowSeconds?: number;
  value: string;
}

export interface MetricValueList {
  kind: 'MetricValueList';
  apiVersion: typeof CUSTOM_GROUP_VERSION;
  metadata: Record<string, never>;
  items: MetricValue[];
}

/**
 * custom.metrics.k8s.io/v1beta2 items describing TokenScaler objects. `metric.selector` is echoed
 * as null (the HPA ignores it; the Go field has no omitempty, so null is the valid empty value).
 */
export function customMetricValueList(metric: ServedMetric, values: readonly ServedValue[]): MetricValueList {
  return {
    kind: 'MetricValueList',
    apiVersion: CUSTOM_GROUP_VERSION,
    metadata: {},
    items: values.map((value) => customMetricValue(metric, value)),
  };
}

/** One item of a MetricValueList; throws `QuantityError` for a value that is no quantity. */
export function customMetricValue(
  metric: ServedMetric,
  { scaler, decision, value }: ServedValue,
): MetricValue {
  const window = windowFor(metric, scaler);
  return {
    describedObject: {
      kind: SCALER_KIND,
      namespace: scaler.namespace,
      name: scaler.name,
      apiVersion: SCALER_API_VERSION,
    },
    metric: { name: metric.name, selector: null },
    timestamp: formatTimestamp(decision.decidedAtSeconds),
    ...(window === undefined ? {} : { windowSeconds: window }),
    value: formatQuantity(value),
  };
}

/**
 * The body of `GET /keda/v1/namespaces/{ns}/tokenscalers/{name}` for KEDA's `metrics-api` scaler
 * (`valueLocation: desiredReplicas`, `targetValue: "1"`). Unmeasured figures are `null`, never 0:
 * KEDA then reports the read as failed instead of scaling on a fake zero.
 */
export interface KedaBody {
  namespace: string;
  name: string;
  timestamp: string;
  desiredReplicas: number;
  demandTokens: number | null;
  inflightTokens: number | null;
  waitingTokens: number | null;
  tokensPerReplica: number;
  requestTokensP95: number | null;
  bindingConstraint: Decision['bindingConstraint'];
  reason: string;
  fits: boolean | null;
  metricsAvailable: boolean;
  fallbackActive: boolean;
  demandWindowSeconds: number | null;
}

export function kedaBody(scaler: PublishedScaler, decision: Decision): KedaBody {
  return {
    namespace: scaler.namespace,
    name: scaler.name,
    timestamp: formatTimestamp(decision.decidedAtSeconds),
    desiredReplicas: decision.desiredReplicas,
    demandTokens: measured(decision.demandTokens),
    inflightTokens: measured(decision.inflightTokens),
    waitingTokens: measured(decision.waitingTokens),
    tokensPerReplica: roundToMilli(decision.tokensPerReplica),
    requestTokensP95: measured(decision.requestTokensP95),
    bindingConstraint: decision.bindingConstraint,
    reason: decision.reason,
    fits: decision.fits ?? null,
    metricsAvailable: decision.metricsAvailable,
    fallbackActive: decision.fallbackActive,
    demandWindowSeconds: scaler.demandWindowSeconds ?? null,
  };
}

function measured(value: number | undefined): number | null {
  return value === undefined || !Number.isFinite(value) ? null : roundToMilli(value);
}
