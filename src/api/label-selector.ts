/**
 * @module api/label-selector
 *
 * The Kubernetes label-selector grammar as kube-apiserver parses it (apimachinery
 * `pkg/labels/selector.go`): comma-separated requirements, each `key`, `!key`, `key=value`,
 * `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key>5` or `key<5`, with the same
 * key/value validation and the same matching rules (`!=` and `notin` match a missing label; `>`/`<`
 * compare integers). The HPA sends `metav1.LabelSelector` converted to this string form, sorted by
 * key (reference/external-metrics-contract.md §1.1); the aggregator URL-encodes it, and callers pass
 * the already decoded text here.
 */
import { InvalidInputError } from '../errors.ts';

export type SelectorOperator = '=' | '==' | '!=' | 'in' | 'notin' | 'exists' | '!' | '>' | '<';

export interface Requirement {
  key: string;
  operator: SelectorOperator;
  /** Sorted and de-duplicated, as apimachinery's string set keeps them. Empty for exists and `!`. */
  values: readonly string[];
}

export interface LabelSelector {
  /** Empty: matches everything (`labels.Everything()`). Sorted by key. */
  requirements: readonly Requirement[];
}

export type Labels = Readonly<Record<string, string>>;

const EVERYTHING: LabelSelector = { requirements: [] };

type TokenKind =
  | 'end'
  | 'identifier'
  | 'open'
  | 'close'
  | 'comma'
  | 'not'
  | 'equals'
  | 'double-equals'
  | 'not-equals'
  | 'greater'
  | 'less'
  | 'in'
  | 'notin';

interface Token {
  kind: TokenKind;
  literal: string;
}

const SYMBOLS: ReadonlyArray<[string, TokenKind]> = [
  // Longest first, as the Go lexer prefers the longest symbol it knows.
  ['==', 'double-equals'],
  ['!=', 'not-equals'],
  ['=', 'equals'],
  ['!', 'not'],
  ['(', 'open'],
  [')', 'close'],
  [',', 'comma'],
  ['>', 'greater'],
  ['<', 'less'],
];

const SPECIAL = new Set(['=', '!', '(', ')', ',', '>', '<']);
const WHITESPACE = new Set([' ', '\t', '\r', '\n']);

function lex(input: string): Token[] {
  const tokens: Token[] = [];
  let position = 0;
  while (position < input.length) {
    const char = input.charAt(position);
    if (WHITESPACE.has(char)) {
      position += 1;
      continue;
    }
    if (SPECIAL.has(char)) {
      const symbol = SYMBOLS.find(([text]) => input.startsWith(text, position));
      if (symbol === undefined) throw selectorError(input, `unexpected character "${char}"`);
      tokens.push({ kind: symbol[1], literal: symbol[0] });
      position += symbol[0].length;
      continue;
    }
    const start = position;
    while (position < input.length) {
      const next = input.charAt(position);
      if (WHITESPACE.has(next) || SPECIAL.has(next)) break;
      position += 1;
    }
    const word = input.slice(start, position);
    tokens.push({ kind: word === 'in' ? 'in' : word === 'notin' ? 'notin' : 'identifier', literal: word });
  }
  tokens.push({ kind: 'end', literal: '' });
  return tokens;
}

class Parser {
  private readonly tokens: Token[];
  private position = 0;
  private readonly input: string;

  constructor(input: string) {
    this.input = input;
    this.tokens = lex(input);
  }

  /** In value position the keywords `in`/`notin` are plain identifiers (a label may be named "in"). */
  private lookahead(): Token {
    const token = this.tokens[this.position] ?? { kind: 'end', literal: '' };
    return token.kind === 'in' || token.kind === 'notin'
      ? { kind: 'identifier', literal: token.literal }
      : token;
  }

  private consume(asValue = true): Token {
    const raw = this.tokens[this.position] ?? { kind: 'end', literal: '' };
    this.position = Math.min(this.position + 1, this.tokens.length - 1);
    if (asValue && (raw.kind === 'in' || raw.kind === 'notin'))
      return { kind: 'identifier', literal: raw.literal };
    return raw;
  }

  private fail(message: string): never {
    throw selectorError(this.input, message);
  }

  parse(): Requirement[] {
    const requirements: Requirement[] = [];
    for (;;) {
      const token = this.lookahead();
      if (token.kind === 'end') return requirements;
      if (token.kind !== 'identifier' && token.kind !== 'not') {
        this.fail(`found '${token.literal}', expected: !, identifier, or 'end of string'`);
      }
      requirements.push(this.parseRequirement());
      const after = this.consume();
      if (after.kind === 'end') return requirements;
      if (after.kind !== 'comma') this.fail(`found '${after.literal}', expected: ',' or 'end of string'`);
      const next = this.lookahead();
      if (next.kind !== 'identifier' && next.kind !== 'not') {
        this.fail(`found '${next.literal}', expected: identifier after ','`);
      }
    }
  }

  private parseRequirement(): Requirement {
    let token = this.consume();
    let unary: 'exists' | '!' | undefined;
    if (token.kind === 'not') {
      unary = '!';
      token = this.consume();
    }
    if (token.kind !== 'identifier') this.fail(`found '${token.literal}', expected: identifier`);
    const key = token.literal;
    validateKey(this.input, key);
    const next = this.lookahead();
    if (next.kind === 'end' || next.kind === 'comma') return { key, operator: unary ?? 'exists', values: [] };
    if (unary === '!') this.fail(`found '${next.literal}', expected: ',' or 'end of string' after !${key}`);
    const operator = this.parseOperator();
    const values =
      operator === 'in' || operator === 'notin' ? this.parseValueSet() : [this.parseExactValue()];
    return buildRequirement(this.input, key, operator, values);
  }

  private parseOperator(): SelectorOperator {
    const token = this.consume(false);
    switch (token.kind) {
      case 'in':
        return 'in';
      case 'notin':
        return 'notin';
      case 'equals':
        return '=';
      case 'double-equals':
        return '==';
      case 'not-equals':
        return '!=';
      case 'greater':
        return '>';
      case 'less':
        return '<';
      default:
        return this.fail(`found '${token.literal}', expected: in, notin, =, ==, !=, gt, lt`);
    }
  }

  /** `(a,b)`; a port of Go's parseValues/parseIdentifiersList, including its empty-value rules. */
  private parseValueSet(): string[] {
    const open = this.consume();
    if (open.kind !== 'open') this.fail(`found '${open.literal}', expected: '('`);
    const first = this.lookahead();
    if (first.kind === 'close') {
      this.consume();
      return [''];
    }
    if (first.kind !== 'identifier' && first.kind !== 'comma') {
      this.fail(`found '${first.literal}', expected: ',', ')' or identifier`);
    }
    const values = this.parseIdentifierList();
    const close = this.consume();
    if (close.kind !== 'close') this.fail(`found '${close.literal}', expected: ')'`);
    return values;
  }

  private parseIdentifierList(): string[] {
    const values = new Set<string>();
    for (;;) {
      const token = this.consume();
      if (token.kind === 'identifier') {
        values.add(token.literal);
        const after = this.lookahead();
        if (after.kind === 'comma') continue;
        if (after.kind === 'close') return [...values];
        this.fail(`found '${after.literal}', expected: ',' or ')'`);
      }
      if (token.kind !== 'comma') this.fail(`found '${token.literal}', expected: ',', or identifier`);
      // "(,a)", "(a,)" and "(a,,b)" each carry an empty value.
      if (values.size === 0) values.add('');
      const after = this.lookahead();
      if (after.kind === 'close') {
        values.add('');
        return [...values];
      }
      if (after.kind === 'comma') {
        this.consume();
        values.add('');
      }
    }
  }

  private parseExactValue(): string {
    const token = this.lookahead();
    if (token.kind === 'end' || token.kind === 'comma') return '';
    const value = this.consume();
    if (value.kind !== 'identifier') this.fail(`found '${value.literal}', expected: identifier`);
    return value.literal;
  }
}

function buildRequirement(
  input: string,
  key: string,
  operator: SelectorOperator,
  raw: string[],
): Requirement {
  const values = [...new Set(raw)].sort();
  if ((operator === 'in' || operator === 'notin') && values.length === 0) {
    throw selectorError(input, `for 'in', 'notin' operators, values set can't be empty (key "${key}")`);
  }
  if (operator === '>' || operator === '<') {
    const [value] = values;
    if (value === undefined || !/^[+-]?\d+$/.test(value) || !fitsInt64(value)) {
      throw selectorError(
        input,
        `for 'gt', 'lt' operators, the value must be an integer (key "${key}", got "${value ?? ''}")`,
      );
    }
  }
  for (const value of values) validateValue(input, key, value);
  return { key, operator, values };
}

/** Go parses the operand with `strconv.ParseInt(v, 10, 64)`. */
function fitsInt64(text: string): boolean {
  const value = BigInt(text);
  return value >= -9_223_372_036_854_775_808n && value <= 9_223_372_036_854_775_807n;
}

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A qualified name: optional DNS-1123 subdomain prefix (<= 253) and "/", then a name (<= 63). */
function validateKey(input: string, key: string): void {
  const slash = key.indexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  const problems: string[] = [];
  if (prefix !== undefined) {
    if (prefix.length === 0) problems.push('the prefix before "/" must be non-empty');
    else if (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)) {
      problems.push('the prefix must be a lower-case DNS-1123 subdomain of at most 253 characters');
    }
  }
  if (name.length === 0 || name.length > 63 || !NAME_PART.test(name)) {
    problems.push(
      'the name must be 1-63 characters of alphanumerics, "-", "_" or ".", starting and ending with an alphanumeric',
    );
  }
  if (problems.length > 0) throw selectorError(input, `invalid label key "${key}": ${problems.join('; ')}`);
}

function validateValue(input: string, key: string, value: string): void {
  if (value === '') return;
  if (value.length > 63 || !NAME_PART.test(value)) {
    throw selectorError(
      input,
      `invalid label value "${value}" for key "${key}": must be at most 63 characters of alphanumerics, "-", "_" or ".", starting and ending with an alphanumeric`,
    );
  }
}

function selectorError(input: string, why: string): InvalidInputError {
  return new InvalidInputError('labelSelector', `unable to parse requirement in "${input}": ${why}`);
}

/**
 * Parses a selector string. The empty string (and all-whitespace) selects everything, as
 * `labels.Parse("")` does. Throws `InvalidInputError` (field `labelSelector`) on bad input.
 */
export function parseLabelSelector(input: string): LabelSelector {
  if (input.trim() === '') return EVERYTHING;
  const requirements = new Parser(input).parse();
  requirements.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { requirements };
}

export function requirementMatches(requirement: Requirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, requirement.key);
  const value = has ? labels[requirement.key] : undefined;
  switch (requirement.operator) {
    case '=':
    case '==':
    case 'in':
      return value !== undefined && requirement.values.includes(value);
    case '!=':
    case 'notin':
      return value === undefined || !requirement.values.includes(value);
    case 'exists':
      return has;
    case '!':
      return !has;
    case '>':
    case '<': {
      if (value === undefined || !/^[+-]?\d+$/.test(value) || !fitsInt64(value)) return false;
      const operand = requirement.values[0];
      if (operand === undefined) return false;
      const left = BigInt(value);
      const right = BigInt(operand);
      return requirement.operator === '>' ? left > right : left < right;
    }
  }
}

export function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  return selector.requirements.every((requirement) => requirementMatches(requirement, labels));
}

/** The canonical string form (apimachinery `Selector.String()`), for messages. */
export function formatLabelSelector(selector: LabelSelector): string {
  return selector.requirements
    .map(({ key, operator, values }) => {
      switch (operator) {
        case 'exists':
          return key;
        case '!':
          return `!${key}`;
        case 'in':
        case 'notin':
          return `${key} ${operator} (${values.join(',')})`;
        default:
          return `${key}${operator}${values[0] ?? ''}`;
      }
    })
    .join(',');
}
