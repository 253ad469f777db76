/**
 * @module What the API server does with a custom resource before storing it, for a structural CRD
 * schema: apply `default`s, check types, enums, bounds, lengths, patterns and required fields, reject
 * unknown fields (kubectl's default strict field validation), and evaluate the
 * `x-kubernetes-validations` CEL rules with a real CEL evaluator (@bufbuild/cel). Integers are bound
 * to CEL as int (bigint), as the API server does. The fake API server admits TokenScalers through it,
 * and src/kube/crd.test.ts checks the generated CRD and the zod schema agree through it.
 */
import { type CelInput, run } from '@bufbuild/cel';
import type { StoredObject } from './fake-apiserver-store.ts';

type Schema = Record<string, unknown>;

export interface ValidationResult {
  value: unknown;
  errors: string[];
}

/** Defaults then validates `value` against `schema`; `path` names the field in messages (`spec`). */
export function validateStructural(schema: Schema, input: unknown, path: string): ValidationResult {
  const errors: string[] = [];
  const value = defaulted(schema, structuredClone(input));
  check(schema, value, path, errors);
  return { value, errors };
}

/** An admission validator for the fake store: the CRD's openAPIV3Schema applied to spec and status. */
export function crdValidator(
  openApiV3Schema: Schema,
): (object: StoredObject) => { object: StoredObject; errors: string[] } {
  const properties = openApiV3Schema.properties as Record<string, Schema>;
  return (object) => {
    const errors: string[] = [];
    const result = structuredClone(object);
    for (const field of ['spec', 'status'] as const) {
      const schema = properties[field];
      if (schema === undefined || result[field] === undefined) continue;
      const { value, errors: fieldErrors } = validateStructural(schema, result[field], field);
      result[field] = value;
      errors.push(...fieldErrors);
    }
    for (const required of (openApiV3Schema.required as string[] | undefined) ?? []) {
      if (result[required] === undefined) errors.push(`${required}: Required value`);
    }
    return { object: result, errors };
  };
}

function defaulted(schema: Schema, value: unknown): unknown {
  if (schema.type === 'object' && isObject(value)) {
    const properties = schema.properties as Record<string, Schema> | undefined;
    if (properties !== undefined) {
      for (const [key, child] of Object.entries(properties)) {
        if (value[key] === undefined && child.default !== undefined)
          value[key] = structuredClone(child.default);
        if (value[key] !== undefined) value[key] = defaulted(child, value[key]);
      }
    }
    const additional = schema.additionalProperties as Schema | undefined;
    if (additional !== undefined)
      for (const key of Object.keys(value)) value[key] = defaulted(additional, value[key]);
  } else if (schema.type === 'array' && Array.isArray(value)) {
    return value.map((item) => defaulted(schema.items as Schema, item));
  }
  return value;
}

function check(schema: Schema, value: unknown, path: string, errors: string[]): void {
  const type = schema.type as string;
  const shown = JSON.stringify(value);
  const typeOk =
    type === 'object'
      ? isObject(value)
      : type === 'array'
        ? Array.isArray(value)
        : type === 'string'
          ? typeof value === 'string'
          : type === 'integer'
            ? typeof value === 'number' && Number.isInteger(value)
            : type === 'number'
              ? typeof value === 'number' && Number.isFinite(value)
              : type === 'boolean'
                ? typeof value === 'boolean'
                : false;
  if (!typeOk) {
    errors.push(`${path}: Invalid value: ${shown}: ${path} in body must be of type ${type}`);
    return;
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) {
    errors.push(
      `${path}: Unsupported value: ${shown}: supported values: ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`,
    );
  }
  if (typeof value === 'number') {
    const min = schema.minimum as number | undefined;
    const max = schema.maximum as number | undefined;
    if (min !== undefined && (schema.exclusiveMinimum === true ? value <= min : value < min))
      errors.push(
        `${path}: Invalid value: ${shown}: ${path} in body should be greater than ${schema.exclusiveMinimum === true ? '' : 'or equal to '}${min}`,
      );
    if (max !== undefined && (schema.exclusiveMaximum === true ? value >= max : value > max))
      errors.push(
        `${path}: Invalid value: ${shown}: ${path} in body should be less than ${schema.exclusiveMaximum === true ? '' : 'or equal to '}${max}`,
      );
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (typeof schema.minLength === 'number' && length < schema.minLength)
      errors.push(
        `${path}: Invalid value: ${shown}: ${path} in body should be at least ${schema.minLength} chars long`,
      );
    if (typeof schema.maxLength === 'number' && length > schema.maxLength)
      errors.push(`${path}: Too long: may not be longer than ${schema.maxLength}`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value))
      errors.push(`${path}: Invalid value: ${shown}: ${path} in body should match '${schema.pattern}'`);
    if (schema.format === 'date-time' && Number.isNaN(Date.parse(value)))
      errors.push(`${path}: Invalid value: ${shown}: ${path} in body must be of type date-time`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems)
      errors.push(
        `${path}: Invalid value: ${value.length}: ${path} in body should have at least ${schema.minItems} items`,
      );
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems)
      errors.push(`${path}: Too many: ${value.length}: must have at most ${schema.maxItems} items`);
    value.forEach((item, i) => {
      check(schema.items as Schema, item, `${path}[${i}]`, errors);
    });
  }
  if (isObject(value) && schema['x-kubernetes-preserve-unknown-fields'] !== true) {
    const properties = schema.properties as Record<string, Schema> | undefined;
    const additional = schema.additionalProperties as Schema | undefined;
    for (const [key, child] of Object.entries(value)) {
      const childSchema = properties?.[key] ?? additional;
      if (childSchema === undefined) errors.push(`${path}: unknown field "${path}.${key}"`);
      else check(childSchema, child, `${path}.${key}`, errors);
    }
    for (const required of (schema.required as string[] | undefined) ?? []) {
      if (value[required] === undefined) errors.push(`${path}.${required}: Required value`);
    }
  }
  const rules = schema['x-kubernetes-validations'] as Array<{ rule: string; message?: string }> | undefined;
  if (rules !== undefined && errors.length === 0) {
    const self = toCel(schema, value);
    for (const { rule, message } of rules) {
      let ok: unknown;
      try {
        ok = run(rule, { self: self as CelInput });
      } catch (error) {
        errors.push(
          `${path}: Invalid value: "object": rule ${JSON.stringify(rule)} failed to evaluate: ${String(error)}`,
        );
        continue;
      }
      if (ok !== true) errors.push(`${path}: Invalid value: "object": ${message ?? `failed rule: ${rule}`}`);
    }
  }
}

/** JSON to CEL input: integers of `type: integer` fields as int (bigint), other numbers as double. */
function toCel(schema: Schema | undefined, value: unknown): unknown {
  if (schema?.type === 'integer' && typeof value === 'number') return BigInt(value);
  if (Array.isArray(value)) return value.map((item) => toCel(schema?.items as Schema | undefined, item));
  if (isObject(value)) {
    const properties = schema?.properties as Record<string, Schema> | undefined;
    const additional = schema?.additionalProperties as Schema | undefined;
    return new Map(Object.entries(value).map(([k, v]) => [k, toCel(properties?.[k] ?? additional, v)]));
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
