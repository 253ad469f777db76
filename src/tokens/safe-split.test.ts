import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { type EncodingName, type MemoTokenizer, TokenizerRegistry } from './encodings.ts';
import { isSafeCut, sliceAtSafeCuts, splitParagraphs } from './safe-split.ts';

const registry = new TokenizerRegistry();
const tokenizers = {} as Record<EncodingName, MemoTokenizer>;

beforeAll(async () => {
  tokenizers.o200k_base = await registry.load('o200k_base');
  tokenizers.cl100k_base = await registry.load('cl100k_base');
});

// The characters the regex treats differently: spaces before/after words, newline runs, the `/`
// that o200k_base's punctuation runs may swallow after a newline, contractions, digits, marks.
const tricky = fc.constantFrom(
  ' ',
  ' ',
  '  ',
  '\n',
  '\n\n',
  '\r\n',
  '\t',
  '\u00a0',
  '/',
  '//',
  "'s",
  "'",
  'word',
  'The',
  'ABC',
  'é',
  '\u0301',
  '東京',
  '7',
  '1234',
  '{',
  '"',
  '.',
  ',',
  '😀',
  '👍🏽',
  '<|endoftext|>',
);
const trickyText = fc.array(tricky, { minLength: 1, maxLength: 50 }).map((parts) => parts.join(''));

describe('isSafeCut', () => {
  it.each([
    { text: 'ab cd', i: 2, safe: true, why: 'non-space then space' },
    { text: 'ab  cd', i: 3, safe: false, why: 'inside a whitespace run' },
    { text: 'ab\ncd', i: 3, safe: true, why: 'newline then a letter' },
    { text: 'ab\n/cd', i: 3, safe: false, why: "o200k's punctuation may take newline + slash" },
    { text: 'ab\n cd', i: 3, safe: false, why: 'newline then whitespace' },
    { text: 'abcd', i: 2, safe: false, why: 'inside a word' },
    { text: 'ab cd', i: 0, safe: false, why: 'at the start' },
  ])('$why', ({ text, i, safe }) => {
    expect(isSafeCut(text, i)).toBe(safe);
  });

  for (const encoding of ['o200k_base', 'cl100k_base'] as const) {
    it(`every safe cut keeps the ${encoding} count exact`, () => {
      fc.assert(
        fc.property(trickyText, (text) => {
          const whole = tokenizers[encoding].count(text);
          for (let i = 1; i < text.length; i++) {
            if (!isSafeCut(text, i)) continue;
            const split =
              tokenizers[encoding].count(text.slice(0, i)) + tokenizers[encoding].count(text.slice(i));
            expect(split, `cut at ${i} of ${JSON.stringify(text)}`).toBe(whole);
          }
        }),
        { numRuns: 400 },
      );
    });
  }
});

describe('splitParagraphs', () => {
  it.each([
    { text: 'one\n\ntwo\n\n\nthree', parts: ['one\n\n', 'two\n\n\n', 'three'] },
    { text: 'no blank line\nhere', parts: ['no blank line\nhere'] },
    { text: 'indented\n\n  code', parts: ['indented\n\n  code'] },
    { text: '', parts: [''] },
  ])('$text', ({ text, parts }) => {
    expect(splitParagraphs(text)).toEqual(parts);
  });

  it('parts join back to the text', () => {
    fc.assert(
      fc.property(trickyText, (text) => {
        expect(splitParagraphs(text).join('')).toBe(text);
      }),
    );
  });
});

describe('sliceAtSafeCuts', () => {
  it('slices join back, stay near the size and keep the count', () => {
    fc.assert(
      fc.property(
        fc.array(tricky, { minLength: 50, maxLength: 400 }),
        fc.integer({ min: 8, max: 64 }),
        (parts, max) => {
          const text = parts.join('');
          const slices = sliceAtSafeCuts(text, max);
          expect(slices.join('')).toBe(text);
          const sum = slices.reduce((n, s) => n + tokenizers.o200k_base.count(s), 0);
          expect(sum).toBe(tokenizers.o200k_base.count(text));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('keeps a stretch without safe cuts whole', () => {
    const blob = 'QUJD'.repeat(100);
    expect(sliceAtSafeCuts(blob, 16)).toEqual([blob]);
  });

  it('cuts prose into slices no longer than the limit when words allow it', () => {
    const slices = sliceAtSafeCuts('lorem ipsum dolor sit amet '.repeat(100), 64);
    expect(slices.length).toBeGreaterThan(30);
    for (const s of slices.slice(0, -1)) expect(s.length).toBeLessThanOrEqual(64);
  });
});
