/**
 * @module Errors raised while collecting metrics. Each carries a stable `code` (matched by the
 * reconcile loop, logs and tests) and the underlying failure as `cause`. A failure is always an error,
 * never a zero: the decision holds when a source cannot say what the demand is.
 */
import { TokenscalerError } from '../errors.ts';

export const SOURCE_ERROR_CODES = [
  /** The exposition text broke the Prometheus text or OpenMetrics grammar. */
  'EXPOSITION_MALFORMED',
  /** The payload exceeded a size, sample, label or line limit. */
  'EXPOSITION_LIMIT',
  /** An endpoint could not be reached, answered with a non-2xx status, or sent an unreadable body. */
  'SCRAPE_FAILED',
  /** An endpoint did not answer within its deadline. */
  'SCRAPE_TIMEOUT',
  /**
   * A metric the engine profile reads has another type than the engine documents. Reported as a
   * problem of the pod (PodReport.problems, observation warnings); that reading is skipped there.
   */
  'METRIC_TYPE_MISMATCH',
  /** The payload parsed but holds none of the metrics of the configured engine kind. */
  'ENGINE_METRICS_MISSING',
  /** Prometheus could not be reached or answered with something that is not its HTTP API. */
  'PROMETHEUS_UNREACHABLE',
  /** Prometheus did not answer within the deadline. */
  'PROMETHEUS_TIMEOUT',
  /** Prometheus answered with an error body (bad PromQL, execution error, timeout inside Prometheus). */
  'PROMETHEUS_QUERY_FAILED',
  /** Prometheus answered 2xx with a body that does not match its API schema. */
  'PROMETHEUS_BAD_RESPONSE',
  /** Scrape endpoints could not be resolved (pod discovery failed, or none is configured). */
  'ENDPOINTS_UNRESOLVED',
  /** No pod produced usable metrics this tick: every endpoint failed, or none matched. */
  'NO_PODS_REPORTING',
  /** The caller aborted the observation (shutdown). */
  'ABORTED',
] as const;

export type SourceErrorCode = (typeof SOURCE_ERROR_CODES)[number];

/** Any failure of metric collection. `target` names the endpoint URL or the Prometheus query involved. */
export class MetricsSourceError extends TokenscalerError {
  declare readonly code: SourceErrorCode;
  readonly target: string | undefined;

  constructor(code: SourceErrorCode, message: string, options?: { cause?: unknown; target?: string }) {
    super(code, message, options);
    this.name = 'MetricsSourceError';
    this.target = options?.target;
  }
}

/** A payload that is not valid exposition text; `line` is 1-based. */
export class ExpositionError extends MetricsSourceError {
  readonly line: number | undefined;
  /** The message without the endpoint and line prefixes. */
  readonly detail: string;

  constructor(
    code: 'EXPOSITION_MALFORMED' | 'EXPOSITION_LIMIT',
    detail: string,
    options?: { line?: number; cause?: unknown; target?: string },
  ) {
    const where = [options?.target, options?.line === undefined ? undefined : `line ${options.line}`]
      .filter((part) => part !== undefined)
      .join(': ');
    super(code, where === '' ? detail : `${where}: ${detail}`, options);
    this.name = 'ExpositionError';
    this.line = options?.line;
    this.detail = detail;
  }

  /** The same error, attributed to the endpoint that served the payload. */
  withTarget(target: string): ExpositionError {
    return new ExpositionError(this.code as 'EXPOSITION_MALFORMED' | 'EXPOSITION_LIMIT', this.detail, {
      ...(this.line === undefined ? {} : { line: this.line }),
      cause: this.cause,
      target,
    });
  }
}

/** Wraps anything thrown into a MetricsSourceError, keeping ours as they are. */
export function asSourceError(
  error: unknown,
  fallback: SourceErrorCode,
  target?: string,
): MetricsSourceError {
  if (error instanceof MetricsSourceError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new MetricsSourceError(fallback, target === undefined ? message : `${target}: ${message}`, {
    cause: error,
    ...(target === undefined ? {} : { target }),
  });
}
