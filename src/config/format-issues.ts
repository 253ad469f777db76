import type { z } from 'zod';
import { InvalidInputError } from '../errors.ts';

/**
 * Turns zod issues into one line a person can act on: the field path, the value that was given,
 * and what is allowed. `subject` names where the input came from (a file, a flag, a resource).
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], input: unknown): string {
  return issues
    .map((issue) => {
      const path = issue.path.map(String).join('.') || '(root)';
      const given = valueAt(input, issue.path);
      const shown = given === undefined ? 'missing' : JSON.stringify(given);
      return `${path}: ${issue.message} (got ${truncate(shown)})`;
    })
    .join('; ');
}

export function parseOrThrow<T>(schema: z.ZodType<T>, input: unknown, subject: string): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new InvalidInputError(subject, describeIssues(result.error.issues, input), { cause: result.error });
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = input;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
