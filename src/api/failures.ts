/**
 * @module api/failures
 *
 * The Status a denied or failed request is answered with, shared by the express app and the fast
 * path (`fast-path.ts`) so that both give the same code, message and details for the same cause.
 */
import type { ApiLogger } from './app.ts';
import type { RequestAttributes, UserInfo } from './auth.ts';
import { forbiddenMessage } from './auth.ts';
import type { StatusCode, StatusDetails } from './status.ts';
import { ApiStatusError } from './status.ts';

export interface StatusAnswer {
  code: StatusCode;
  message: string;
  details?: StatusDetails;
}

/** 403 in kube-apiserver's wording; details name the resource when the path is one. */
export function forbiddenAnswer(
  user: UserInfo,
  attributes: RequestAttributes,
  reason: string | undefined,
): StatusAnswer {
  return {
    code: 403,
    message: forbiddenMessage(user, attributes, reason),
    details:
      attributes.kind === 'resource'
        ? {
            group: attributes.group,
            kind: attributes.resource,
            ...(attributes.name ? { name: attributes.name } : {}),
          }
        : {},
  };
}

/**
 * What a thrown error answers: an `ApiStatusError` as itself (logged when 5xx), express's 400 for
 * a path segment that does not percent-decode, anything else a 500 that leaks nothing (logged).
 */
export function failureAnswer(error: unknown, path: string, logger: ApiLogger): StatusAnswer {
  if (error instanceof ApiStatusError) {
    if (error.httpStatus >= 500) {
      logger.error('metrics API request failed', { path, error, cause: error.cause });
    }
    return {
      code: error.httpStatus,
      message: error.message,
      ...(error.details === undefined ? {} : { details: error.details }),
    };
  }
  const status = (error as { status?: unknown } | undefined)?.status;
  if (status === 400) {
    return { code: 400, message: 'the request path is not valid: a segment does not percent-decode' };
  }
  logger.error('metrics API request failed', { path, error });
  return { code: 500, message: 'Internal error occurred: unable to fetch metrics' };
}
