/**
 * @module api/queries
 *
 * Turns a request (namespace, metric, selector) and the decision store into a payload, or into an
 * `ApiStatusError` with the Status the HPA should see:
 * - 404 NotFound: unknown metric, unknown scaler, or a selector that matches no scaler;
 * - 503 ServiceUnavailable: a matched scaler has no decision yet, or the value is not measured;
 * - 400 BadRequest: a selector that does not parse.
 * Never an empty `items` list: the HPA treats that as an error with a useless message
 * (reference/external-metrics-contract.md §2.1, pitfall 10).
 */
import { InvalidInputError } from '../errors.ts';
import type { ServedMetric } from './catalog.ts';
import {
  CUSTOM_GROUP,
  EXTERNAL_GROUP,
  findServedMetric,
  SCALER_NAME_LABEL,
  SCALER_RESOURCE,
  servedMetricNames,
} from './catalog.ts';
import type { DecisionStore, PublishedScaler } from './decision-store.ts';
import type { LabelSelector } from './label-selector.ts';
import { formatLabelSelector, parseLabelSelector, selectorMatches } from './label-selector.ts';
import type { ExternalMetricValueList, KedaBody, MetricValueList, ServedValue } from './payloads.ts';
import { customMetricValueList, externalMetricValueList, kedaBody, scalerLabels } from './payloads.ts';
import { QuantityError } from './quantity.ts';
import { ApiStatusError } from './status.ts';

/** How many scaler names a NotFound message lists, to help without flooding. */
const NAMES_IN_MESSAGES = 10;

export function parseSelectorParam(text: string | undefined, parameter: string): LabelSelector {
  try {
    return parseLabelSelector(text ?? '');
  } catch (error) {
    if (error instanceof InvalidInputError) {
      throw new ApiStatusError(
        400,
        `${parameter}: ${error.message.replace(/^labelSelector: /, '')}`,
        undefined,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}

function requireMetric(name: string, group: string, where: string): ServedMetric {
  const metric = findServedMetric(name);
  if (metric === undefined) {
    throw new ApiStatusError(
      404,
      `the server could not find the metric ${name} for ${where}; served metrics: ${servedMetricNames().join(', ')}`,
      { name, group },
    );
  }
  return metric;
}

/** Reads the metric from every scaler, or fails with the 503 that names the first blocker. */
function readValues(metric: ServedMetric, scalers: readonly PublishedScaler[]): ServedValue[] {
  return scalers.map((scaler) => {
    const decision = scaler.decision;
    if (decision === undefined) {
      throw new ApiStatusError(
        503,
        `TokenScaler ${scaler.namespace}/${scaler.name} has no decision yet: the controller has not completed a reconcile for it`,
      );
    }
    const value = metric.read(decision);
    if (value === undefined) {
      throw new ApiStatusError(
        503,
        `metric ${metric.name} of TokenScaler ${scaler.namespace}/${scaler.name} is not measured (${decision.reason})`,
      );
    }
    return { scaler, decision, value };
  });
}

/** A value that cannot be a quantity is our bug: answer 500 without leaking internals, keep the cause. */
function renderOr500<T>(render: () => T, metric: ServedMetric): T {
  try {
    return render();
  } catch (error) {
    if (error instanceof QuantityError) {
      throw new ApiStatusError(
        500,
        `Internal error occurred: unable to serve metric ${metric.name}`,
        undefined,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}

function namesOf(scalers: readonly PublishedScaler[]): string {
  if (scalers.length === 0) return 'there are none';
  const shown = scalers.slice(0, NAMES_IN_MESSAGES).map((scaler) => scaler.name);
  const more = scalers.length > shown.length ? ` and ${scalers.length - shown.length} more` : '';
  return `TokenScalers there: ${shown.join(', ')}${more}`;
}

/**
 * The scalers of a namespace whose labels match. An HPA pins its scaler with
 * `tokenscaler.dev/name=<name>` (or `in (...)`): those are looked up by name, so a request costs
 * the same with 1 or 1,000 scalers in the namespace; other selectors scan the namespace.
 */
export function selectScalers(
  store: DecisionStore,
  namespace: string,
  selector: LabelSelector,
): readonly PublishedScaler[] {
  const byName = selector.requirements.find(
    (requirement) =>
      requirement.key === SCALER_NAME_LABEL &&
      (requirement.operator === '=' || requirement.operator === '==' || requirement.operator === 'in'),
  );
  const candidates =
    byName === undefined
      ? store.list(namespace)
      : // Values are sorted, so the result keeps the store's order by name.
        byName.values
          .map((name) => store.get(namespace, name))
          .filter((scaler): scaler is PublishedScaler => scaler !== undefined);
  return candidates.filter((scaler) => selectorMatches(selector, scalerLabels(scaler)));
}

/**
 * An external-metrics read, checked against everything that does not depend on the store (metric
 * name, selector syntax). The same URL always prepares to the same query, so a caller may keep it.
 */
export interface ExternalMetricQuery {
  namespace: string;
  metric: ServedMetric;
  selector: LabelSelector;
}

/** Throws the 404 (unknown metric) or 400 (bad selector) a request gets before the store is read. */
export function prepareExternalMetricQuery(
  namespace: string,
  metricName: string,
  labelSelector: string | undefined,
): ExternalMetricQuery {
  const metric = requireMetric(metricName, EXTERNAL_GROUP, `namespaces/${namespace}`);
  const selector = parseSelectorParam(labelSelector, 'labelSelector');
  return { namespace, metric, selector };
}

/** The scalers a prepared external-metrics read serves, in order; throws the 404 when none match. */
export function externalMetricScalers(
  store: DecisionStore,
  query: ExternalMetricQuery,
): readonly PublishedScaler[] {
  const { namespace, metric, selector } = query;
  const matched = selectScalers(store, namespace, selector);
  if (matched.length === 0) {
    throw new ApiStatusError(
      404,
      `the server could not find the metric ${metric.name} for namespaces/${namespace} with selector "${formatLabelSelector(selector)}": no TokenScaler matches (${namesOf(store.list(namespace))})`,
      { name: metric.name, group: EXTERNAL_GROUP },
    );
  }
  return matched;
}

/** The answer to a prepared external-metrics read from what the store holds now. */
export function answerExternalMetricQuery(
  store: DecisionStore,
  query: ExternalMetricQuery,
): ExternalMetricValueList {
  const { metric } = query;
  const matched = externalMetricScalers(store, query);
  return renderOr500(() => externalMetricValueList(metric, readValues(metric, matched)), metric);
}

/**
 * `GET /apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}?labelSelector=...`.
 * All scalers of the namespace whose labels (`tokenscaler.dev/name`) match the selector; the HPA
 * sums the items, so an HPA should select exactly one scaler.
 */
export function queryExternalMetric(
  store: DecisionStore,
  namespace: string,
  metricName: string,
  labelSelector: string | undefined,
): ExternalMetricValueList {
  return answerExternalMetricQuery(store, prepareExternalMetricQuery(namespace, metricName, labelSelector));
}

/** A custom-metrics read, checked as far as it can be without the store (see ExternalMetricQuery). */
export interface CustomMetricQuery {
  namespace: string;
  /** A TokenScaler name, or `*` for every scaler `selector` matches. */
  name: string;
  metric: ServedMetric;
  metricSelector: LabelSelector;
  /** Parsed only for name `*` (for a named object the parameter is ignored, as before). */
  selector: LabelSelector | undefined;
}

export interface CustomMetricRequest {
  namespace: string;
  resource: string;
  name: string;
  metric: string;
  labelSelector?: string | undefined;
  metricLabelSelector?: string | undefined;
}

/** Throws the 404 (other resource, unknown metric) or 400 (bad selector) a request gets first. */
export function prepareCustomMetricQuery(request: CustomMetricRequest): CustomMetricQuery {
  const { namespace, resource, name } = request;
  if (resource.toLowerCase() !== SCALER_RESOURCE) {
    throw new ApiStatusError(
      404,
      `the server could not find the metric ${request.metric} for ${resource} ${name}: only ${SCALER_RESOURCE} objects have metrics here`,
      { name: request.metric, group: CUSTOM_GROUP },
    );
  }
  const metric = requireMetric(request.metric, CUSTOM_GROUP, `${SCALER_RESOURCE} ${name}`);
  const metricSelector = parseSelectorParam(request.metricLabelSelector, 'metricLabelSelector');
  const selector = name === '*' ? parseSelectorParam(request.labelSelector, 'labelSelector') : undefined;
  return { namespace, name, metric, metricSelector, selector };
}

/** The answer to a prepared custom-metrics read from what the store holds now. */
export function answerCustomMetricQuery(store: DecisionStore, query: CustomMetricQuery): MetricValueList {
  const { metric } = query;
  const selected = customMetricScalers(store, query);
  return renderOr500(() => customMetricValueList(metric, readValues(metric, selected)), metric);
}

/** The scalers a prepared custom-metrics read serves, in order; throws the 404s when none match. */
export function customMetricScalers(
  store: DecisionStore,
  query: CustomMetricQuery,
): readonly PublishedScaler[] {
  const { namespace, name, metric, metricSelector, selector } = query;
  let scalers: readonly PublishedScaler[];
  if (selector !== undefined) {
    scalers = selectScalers(store, namespace, selector);
  } else {
    const scaler = store.get(namespace, name);
    if (scaler === undefined) {
      throw new ApiStatusError(
        404,
        `the server could not find the metric ${metric.name} for ${SCALER_RESOURCE} ${name}: no TokenScaler ${namespace}/${name} (${namesOf(store.list(namespace))})`,
        { name, group: CUSTOM_GROUP, kind: SCALER_RESOURCE },
      );
    }
    scalers = [scaler];
  }
  const selected = scalers.filter((scaler) => selectorMatches(metricSelector, scalerLabels(scaler)));
  if (selected.length === 0) {
    throw new ApiStatusError(
      404,
      `the server could not find the metric ${metric.name} for ${SCALER_RESOURCE} ${name} in namespace ${namespace} with the given selectors`,
      { name, group: CUSTOM_GROUP, kind: SCALER_RESOURCE },
    );
  }
  return selected;
}

/**
 * `GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/{ns}/{resource}/{name}/{metric}`: an Object
 * metric of one TokenScaler (exactly one item), or with name `*` every scaler matching
 * `labelSelector`. `metricLabelSelector` filters on the metric's labels (`tokenscaler.dev/name`).
 */
export function queryCustomMetric(store: DecisionStore, request: CustomMetricRequest): MetricValueList {
  return answerCustomMetricQuery(store, prepareCustomMetricQuery(request));
}

/** `GET /keda/v1/namespaces/{ns}/tokenscalers/{name}`. */
export function queryKeda(store: DecisionStore, namespace: string, name: string): KedaBody {
  const scaler = store.get(namespace, name);
  if (scaler === undefined) {
    throw new ApiStatusError(404, `no TokenScaler ${namespace}/${name} (${namesOf(store.list(namespace))})`, {
      name,
      group: 'tokenscaler.dev',
      kind: 'tokenscalers',
    });
  }
  if (scaler.decision === undefined) {
    throw new ApiStatusError(
      503,
      `TokenScaler ${namespace}/${name} has no decision yet: the controller has not completed a reconcile for it`,
    );
  }
  return kedaBody(scaler, scaler.decision);
}
