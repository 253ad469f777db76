/**
 * @module api/quantity
 *
 * Emits Kubernetes quantity strings for the metrics APIs. The HPA parses them as fixed-point
 * decimals, rounds non-zero values *up* to nano precision, and compares `MilliValue()` against its
 * tolerance band, so a JavaScript float artefact such as `String(1.1 * 3)` = "3.3000000000000003"
 * becomes 3301 milli and flips a replica decision (reference/external-metrics-contract.md §2.2, V20).
 * We therefore round to the nearest milli-unit ourselves and emit either a plain integer (`"12"`) or
 * an integer count of milli-units (`"3300m"`): both parse exactly, and neither carries float noise.
 */
import { TokenscalerError } from '../errors.ts';

/** Largest milli-value an int64 holds (Quantity values are capped there). */
const MAX_MILLI = 9_223_372_036_854_775_807n;

/** A value that cannot be served as a quantity (negative, NaN, infinite): a bug upstream of the API. */
export class QuantityError extends TokenscalerError {
  readonly value: number;

  constructor(value: number, why: string) {
    super('INVALID_QUANTITY', `cannot serve ${String(value)} as a Kubernetes quantity: ${why}`);
    this.name = 'QuantityError';
    this.value = value;
  }
}

/**
 * Formats a finite, non-negative number as a canonical integer or milli quantity.
 *
 * Worked examples: 0 -> "0"; 12 -> "12"; 1.5 -> "1500m"; 0.1 + 0.2 -> "300m"; 1.1 x 3 -> "3300m";
 * 3000 -> "3000" (Go would write "3k"; both parse to the same value). Values above the int64
 * milli range saturate, as Kubernetes caps them.
 */
export function formatQuantity(value: number): string {
  if (Number.isNaN(value)) throw new QuantityError(value, 'not a number');
  if (!Number.isFinite(value)) throw new QuantityError(value, 'not finite');
  if (value < 0) throw new QuantityError(value, 'negative values are not served');
  const scaled = Math.round(value * 1000);
  // BigInt keeps large values out of exponent notation ("1e+21") and lets us clamp exactly.
  let milli = BigInt(scaled);
  if (milli > MAX_MILLI) milli = MAX_MILLI;
  if (milli % 1000n === 0n) return (milli / 1000n).toString();
  return `${milli.toString()}m`;
}

/** The same rounding for JSON numbers (the KEDA endpoint): at most three decimals, no float noise. */
export function roundToMilli(value: number): number {
  return Math.round(value * 1000) / 1000;
}
