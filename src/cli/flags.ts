import { type ParseArgsConfig, parseArgs } from 'node:util';
import { InvalidInputError } from '../errors.ts';

/**
 * Flag parsing shared by the subcommands: node:util parseArgs (strict: unknown flags are errors),
 * and number parsing that names the flag, the value and the allowed range in its error.
 */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(
  args: readonly string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new InvalidInputError('flags', message.replace(/\. To specify a positional argument.*$/s, ''), {
      cause: error,
    });
  }
}

export interface NumberRule {
  min: number;
  max: number;
  integer?: boolean;
  /** The lower bound itself is not allowed (e.g. utilization > 0). */
  exclusiveMin?: boolean;
}

export function parseNumberFlag(flag: string, raw: string | undefined, rule: NumberRule): number | undefined {
  if (raw === undefined) return undefined;
  const value = raw.trim() === '' ? Number.NaN : Number(raw);
  const belowMin = rule.exclusiveMin ? value <= rule.min : value < rule.min;
  if (!Number.isFinite(value) || belowMin || value > rule.max || (rule.integer && !Number.isInteger(value))) {
    const kind = rule.integer ? 'an integer' : 'a number';
    const lower = rule.exclusiveMin ? `greater than ${rule.min}` : `from ${rule.min}`;
    throw new InvalidInputError(
      `--${flag}`,
      `${JSON.stringify(raw)} is not allowed; expected ${kind} ${lower} to ${rule.max}`,
    );
  }
  return value;
}

export function parseEnumFlag<T extends string>(
  flag: string,
  raw: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new InvalidInputError(
      `--${flag}`,
      `${JSON.stringify(raw)} is not allowed; expected one of ${allowed.join(', ')}`,
    );
  }
  return raw as T;
}
