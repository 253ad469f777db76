import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Labels } from './label-selector.ts';
import { formatLabelSelector, parseLabelSelector, selectorMatches } from './label-selector.ts';

const NAME = 'tokenscaler.dev/name';

describe('parseLabelSelector: grammar', () => {
  it.each([
    ['', []],
    ['   ', []],
    ['a=b', [{ key: 'a', operator: '=', values: ['b'] }]],
    ['a==b', [{ key: 'a', operator: '==', values: ['b'] }]],
    ['a!=b', [{ key: 'a', operator: '!=', values: ['b'] }]],
    ['a = b', [{ key: 'a', operator: '=', values: ['b'] }]],
    ['a=', [{ key: 'a', operator: '=', values: [''] }]],
    ['a', [{ key: 'a', operator: 'exists', values: [] }]],
    ['!a', [{ key: 'a', operator: '!', values: [] }]],
    ['! a', [{ key: 'a', operator: '!', values: [] }]],
    ['a in (y,x)', [{ key: 'a', operator: 'in', values: ['x', 'y'] }]],
    ['a in (x, y, x)', [{ key: 'a', operator: 'in', values: ['x', 'y'] }]],
    ['a notin (x)', [{ key: 'a', operator: 'notin', values: ['x'] }]],
    ['a in ()', [{ key: 'a', operator: 'in', values: [''] }]],
    ['a in (x,)', [{ key: 'a', operator: 'in', values: ['', 'x'] }]],
    ['a in (,x)', [{ key: 'a', operator: 'in', values: ['', 'x'] }]],
    ['a in (x,,y)', [{ key: 'a', operator: 'in', values: ['', 'x', 'y'] }]],
    ['a>5', [{ key: 'a', operator: '>', values: ['5'] }]],
    ['a<3', [{ key: 'a', operator: '<', values: ['3'] }]],
    // The keywords are plain identifiers in value position.
    ['in=notin', [{ key: 'in', operator: '=', values: ['notin'] }]],
    ['x in (in,notin)', [{ key: 'x', operator: 'in', values: ['in', 'notin'] }]],
    [
      'z=1,a!=2,m',
      [
        { key: 'a', operator: '!=', values: ['2'] },
        { key: 'm', operator: 'exists', values: [] },
        { key: 'z', operator: '=', values: ['1'] },
      ],
    ],
    [`${NAME}=llama-70b`, [{ key: NAME, operator: '=', values: ['llama-70b'] }]],
  ])('%j', (input, requirements) => {
    expect(parseLabelSelector(input).requirements).toEqual(requirements);
  });

  it.each([
    ['a=b,', /expected: identifier after ','/],
    [',a', /expected: !, identifier, or 'end of string'/],
    ['a b', /expected: in, notin, =, ==, !=, gt, lt/],
    ['a in x', /expected: '\('/],
    ['a in (x', /expected: ',' or '\)'/],
    ['a in (x y)', /expected: ',' or '\)'/],
    ['a in (x,,)', /expected: ',', or identifier/],
    ['a=(', /expected: identifier/],
    ['a=b=c', /expected: ',' or 'end of string'/],
    ['!a=b', /expected: ',' or 'end of string'/],
    ['a>b', /must be an integer/],
    ['a>99999999999999999999', /must be an integer/],
    // Go also validates the operand as a label value, which may not start with "-".
    ['a<-3', /invalid label value "-3"/],
    ['-a=b', /invalid label key "-a"/],
    ['a/b/c=d', /invalid label key/],
    ['Upper.Case/x=y', /the prefix must be a lower-case DNS-1123 subdomain/],
    [`${'k'.repeat(64)}=v`, /invalid label key/],
    [`a=${'v'.repeat(64)}`, /invalid label value/],
    ['a=-v', /invalid label value "-v"/],
    ['a in (x,-y)', /invalid label value "-y"/],
  ])('rejects %j', (input, message) => {
    expect(() => parseLabelSelector(input)).toThrow(/^labelSelector: unable to parse requirement/);
    expect(() => parseLabelSelector(input)).toThrow(message);
  });
});

describe('parseLabelSelector: what the HPA and the aggregator send', () => {
  // LabelSelectorAsSelector sorts requirements by key and values inside in/notin; the aggregator
  // then query-escapes the string with Go's url.Values.Encode (space -> "+", "," -> "%2C", ...).
  it.each([
    ['labelSelector=tokenscaler.dev%2Fname%3Dllama-70b', `${NAME}=llama-70b`],
    ['labelSelector=pool+in+%28a%2Cb%29%2Ctokenscaler.dev%2Fname%3Dx', `pool in (a,b),${NAME}=x`],
    ['labelSelector=%21canary%2Ctier+notin+%28batch%29', '!canary,tier notin (batch)'],
  ])('%s', (query, canonical) => {
    const decoded = new URLSearchParams(query).get('labelSelector') ?? '';
    expect(formatLabelSelector(parseLabelSelector(decoded))).toBe(canonical);
  });
});

describe('selectorMatches', () => {
  const labels: Labels = { [NAME]: 'llama', pool: 'h200', replicas: '8' };
  it.each([
    ['', true],
    [`${NAME}=llama`, true],
    [`${NAME}==llama`, true],
    [`${NAME}=other`, false],
    [`${NAME}!=other`, true],
    ['missing!=x', true],
    ['missing=x', false],
    ['pool in (a100,h200)', true],
    ['pool notin (h200)', false],
    ['missing notin (x)', true],
    ['missing in (x)', false],
    ['pool', true],
    ['!pool', false],
    ['!missing', true],
    ['replicas>7', true],
    ['replicas>8', false],
    ['replicas<9', true],
    ['pool>1', false],
    ['missing<1', false],
    [`${NAME}=llama,pool=h200`, true],
    [`${NAME}=llama,pool=a100`, false],
  ])('%j -> %s', (selector, expected) => {
    expect(selectorMatches(parseLabelSelector(selector), labels)).toBe(expected);
  });

  it('does not read inherited properties as labels', () => {
    expect(selectorMatches(parseLabelSelector('constructor'), {})).toBe(false);
    expect(selectorMatches(parseLabelSelector('!toString'), {})).toBe(true);
  });
});

describe('formatLabelSelector', () => {
  const key = fc
    .stringMatching(/^[a-z]([a-z0-9.-]{0,10}[a-z0-9])?$/)
    .filter((k) => !k.includes('..') && k !== 'in' && k !== 'notin');
  const value = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9_.-]{0,10}[A-Za-z0-9])?$/);
  const requirement = fc.oneof(
    fc.tuple(key, fc.constantFrom('=', '==', '!='), value).map(([k, op, v]) => `${k}${op}${v}`),
    fc
      .tuple(key, fc.constantFrom('in', 'notin'), fc.array(value, { minLength: 1, maxLength: 3 }))
      .map(([k, op, vs]) => `${k} ${op} (${vs.join(',')})`),
    key,
    key.map((k) => `!${k}`),
    fc.tuple(key, fc.constantFrom('>', '<'), fc.nat()).map(([k, op, n]) => `${k}${op}${n}`),
  );

  it('round-trips: parse(format(parse(s))) equals parse(s)', () => {
    fc.assert(
      fc.property(fc.array(requirement, { maxLength: 5 }), (parts) => {
        const parsed = parseLabelSelector(parts.join(','));
        expect(parseLabelSelector(formatLabelSelector(parsed))).toEqual(parsed);
      }),
      { numRuns: 300 },
    );
  });
});
