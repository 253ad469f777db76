import { describe, expect, it } from 'vitest';
import { TokenscalerError } from '../errors.ts';
import { ApiStatusError, statusBody } from './status.ts';

describe('statusBody', () => {
  it.each([
    [404, 'NotFound'],
    [503, 'ServiceUnavailable'],
    [401, 'Unauthorized'],
    [403, 'Forbidden'],
    [400, 'BadRequest'],
    [405, 'MethodNotAllowed'],
    [500, 'InternalError'],
  ] as const)('%d is a Failure Status with reason %s', (code, reason) => {
    expect(statusBody(code, 'why')).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'why',
      reason,
      code,
    });
  });

  it('carries details only when given', () => {
    expect(statusBody(404, 'x', { name: 'm', group: 'external.metrics.k8s.io' }).details).toEqual({
      name: 'm',
      group: 'external.metrics.k8s.io',
    });
    expect('details' in statusBody(404, 'x')).toBe(false);
  });
});

describe('ApiStatusError', () => {
  it.each([
    [404, 'API_NOT_FOUND'],
    [503, 'API_SERVICE_UNAVAILABLE'],
    [405, 'API_METHOD_NOT_ALLOWED'],
    [500, 'API_INTERNAL_ERROR'],
  ] as const)('%d has the stable code %s and renders its Status', (httpStatus, code) => {
    const error = new ApiStatusError(httpStatus, 'message', undefined, { cause: new Error('root') });
    expect(error).toBeInstanceOf(TokenscalerError);
    expect(error.code).toBe(code);
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.toStatus()).toMatchObject({ code: httpStatus, message: 'message', status: 'Failure' });
  });
});
