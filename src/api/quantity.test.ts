import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { quantityMilliValue } from '../core/hpa.ts';
import { formatQuantity, QuantityError, roundToMilli } from './quantity.ts';

/** The canonical forms we promise: a plain integer or an integer count of milli-units. */
const CANONICAL = /^(0|[1-9]\d*)(m)?$/;

describe('formatQuantity', () => {
  it.each([
    [0, '0'],
    [1, '1'],
    [12, '12'],
    [1.5, '1500m'],
    [0.001, '1m'],
    [0.0004, '0'],
    [0.0005, '1m'],
    [0.1 + 0.2, '300m'],
    [1.1 * 3, '3300m'],
    [3000, '3000'],
    [123_456.789, '123456789m'],
    [1e21, '9223372036854775807m'],
    [-0, '0'],
  ])('%d -> %s', (value, expected) => {
    expect(formatQuantity(value)).toBe(expected);
  });

  it.each([
    [Number.NaN, /not a number/],
    [Number.POSITIVE_INFINITY, /not finite/],
    [-1, /negative/],
  ])('rejects %d', (value, message) => {
    expect(() => formatQuantity(value)).toThrow(QuantityError);
    expect(() => formatQuantity(value)).toThrow(message);
  });

  it('always emits a canonical string that the HPA reads back to the nearest milli-unit', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e12, noNaN: true }), (value) => {
        const text = formatQuantity(value);
        expect(text).toMatch(CANONICAL);
        expect(quantityMilliValue(text)).toBe(Math.round(value * 1000));
      }),
      { numRuns: 500 },
    );
  });
});

describe('roundToMilli', () => {
  it.each([
    [0.1 + 0.2, 0.3],
    [1.1 * 3, 3.3],
    [1234.56789, 1234.568],
    [7, 7],
  ])('%d -> %d', (value, expected) => {
    expect(roundToMilli(value)).toBe(expected);
    expect(String(roundToMilli(value))).toBe(String(expected));
  });
});
