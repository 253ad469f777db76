/**
 * @module api/status
 *
 * `metav1.Status` error bodies. client-go hands our `message` to the HPA (and kubectl prints it)
 * only when the body decodes as `kind: Status` with `status: Failure` and a JSON content type;
 * otherwise it substitutes a generic text (reference/external-metrics-contract.md §2.4).
 */
import { TokenscalerError } from '../errors.ts';

export const STATUS_REASONS = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  500: 'InternalError',
  503: 'ServiceUnavailable',
} as const;

export type StatusCode = keyof typeof STATUS_REASONS;
export type StatusReason = (typeof STATUS_REASONS)[StatusCode];

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
}

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  details?: StatusDetails;
  code: StatusCode;
}

/**
 * An HTTP error the handlers throw; the error middleware renders it as a Status body. `code` is the
 * stable error code (`API_NOT_FOUND`, ...), `httpStatus` the HTTP status and Status `code`.
 */
export class ApiStatusError extends TokenscalerError {
  readonly httpStatus: StatusCode;
  readonly details: StatusDetails | undefined;

  constructor(
    httpStatus: StatusCode,
    message: string,
    details?: StatusDetails,
    options?: { cause?: unknown },
  ) {
    super(
      `API_${STATUS_REASONS[httpStatus].replace(/(?<=[a-z])(?=[A-Z])/g, '_').toUpperCase()}`,
      message,
      options,
    );
    this.name = 'ApiStatusError';
    this.httpStatus = httpStatus;
    this.details = details;
  }

  get reason(): StatusReason {
    return STATUS_REASONS[this.httpStatus];
  }

  toStatus(): StatusBody {
    return statusBody(this.httpStatus, this.message, this.details);
  }
}

export function statusBody(code: StatusCode, message: string, details?: StatusDetails): StatusBody {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: STATUS_REASONS[code],
    ...(details === undefined ? {} : { details }),
    code,
  };
}
