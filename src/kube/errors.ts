/**
 * @module Errors of the Kubernetes API, mapped to stable codes in one place (code-style anchors,
 * principle 7). Callers match on `code`, never on HTTP numbers or message text: the status writer
 * retries `KUBE_CONFLICT`, the scaler feed relists on `KUBE_GONE`, the HPA manager creates on
 * `KUBE_NOT_FOUND`.
 */
import { TokenscalerError } from '../errors.ts';

export const KUBE_ERROR_CODES = [
  /** 409 on an update whose resourceVersion is stale (optimistic concurrency lost). */
  'KUBE_CONFLICT',
  /** 409 on a create: the object exists. */
  'KUBE_ALREADY_EXISTS',
  /** 410: the resourceVersion a watch or list asked for was compacted away; relist. */
  'KUBE_GONE',
  'KUBE_NOT_FOUND',
  /** 401 or 403: the service account lacks a permission (the message names the verb and resource). */
  'KUBE_FORBIDDEN',
  /** 400 or 422: the server rejected the object (schema, CEL rule, immutable field). */
  'KUBE_INVALID',
  /** 429 or 5xx, or the connection failed: retry with backoff. */
  'KUBE_UNAVAILABLE',
  /** No answer within the deadline. */
  'KUBE_TIMEOUT',
  /** A 2xx answer whose body is not what the API documents. */
  'KUBE_BAD_RESPONSE',
  /** The caller aborted (shutdown). */
  'KUBE_ABORTED',
  /** No kubeconfig and not in a cluster, or a kubeconfig that cannot be used. */
  'KUBE_CONFIG',
] as const;

export type KubeErrorCode = (typeof KUBE_ERROR_CODES)[number];

export class KubeApiError extends TokenscalerError {
  declare readonly code: KubeErrorCode;
  /** HTTP status when the server answered; undefined for network failures and deadlines. */
  readonly httpStatus: number | undefined;

  constructor(code: KubeErrorCode, message: string, options?: { cause?: unknown; httpStatus?: number }) {
    super(code, message, options);
    this.name = 'KubeApiError';
    this.httpStatus = options?.httpStatus;
  }
}

/** The code for an HTTP status the API server answered with. `creating` separates 409 AlreadyExists from Conflict. */
export function codeOfStatus(status: number, reason?: string): KubeErrorCode {
  if (status === 409) return reason === 'AlreadyExists' ? 'KUBE_ALREADY_EXISTS' : 'KUBE_CONFLICT';
  if (status === 410) return 'KUBE_GONE';
  if (status === 404) return 'KUBE_NOT_FOUND';
  if (status === 401 || status === 403) return 'KUBE_FORBIDDEN';
  if (status === 400 || status === 422) return 'KUBE_INVALID';
  if (status === 504) return 'KUBE_TIMEOUT';
  return 'KUBE_UNAVAILABLE';
}

/** True for failures worth retrying after a pause (the server or the network, not the request). */
export function isTransient(error: unknown): boolean {
  return (
    error instanceof KubeApiError &&
    (error.code === 'KUBE_UNAVAILABLE' || error.code === 'KUBE_TIMEOUT' || error.code === 'KUBE_CONFLICT')
  );
}

export function hasCode(error: unknown, code: KubeErrorCode): boolean {
  return error instanceof KubeApiError && error.code === code;
}
