import fc from 'fast-check';
import { get_encoding } from 'tiktoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EncodingName, type MemoTokenizer, TokenizerRegistry } from './encodings.ts';

// Expected counts come from OpenAI's reference implementation (tiktoken's Rust core, via the
// `tiktoken` WASM package, `encode_ordinary`); "tiktoken is great!" = 6 is the cookbook's example.
const KNOWN: { name: string; text: string; o200k_base: number; cl100k_base: number }[] = [
  { name: 'cookbook example', text: 'tiktoken is great!', o200k_base: 6, cl100k_base: 6 },
  { name: 'hello', text: 'hello world', o200k_base: 2, cl100k_base: 2 },
  {
    name: 'French',
    text: "L'élève a dû répondre à la question très rapidement.",
    o200k_base: 12,
    cl100k_base: 15,
  },
  {
    name: 'German',
    text: 'Die Straßenbahnhaltestelle befindet sich gegenüber dem Rathaus.',
    o200k_base: 13,
    cl100k_base: 17,
  },
  {
    name: 'Japanese',
    text: '東京は日本の首都であり、世界最大の都市圏の一つです。',
    o200k_base: 20,
    cl100k_base: 27,
  },
  { name: 'Chinese', text: '我们今天下午三点在会议室开会。', o200k_base: 11, cl100k_base: 15 },
  {
    name: 'Russian',
    text: 'Быстрая коричневая лиса перепрыгивает через ленивую собаку.',
    o200k_base: 20,
    cl100k_base: 30,
  },
  { name: 'Arabic', text: 'مرحبا بالعالم، كيف حالك اليوم؟', o200k_base: 10, cl100k_base: 23 },
  { name: 'Hindi', text: 'नमस्ते दुनिया, आप कैसे हैं?', o200k_base: 10, cl100k_base: 27 },
  {
    name: 'Python code',
    text: 'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
    o200k_base: 30,
    cl100k_base: 30,
  },
  {
    name: 'JSON',
    text: '{"user": {"id": 42, "name": "Ada", "tags": ["admin", "ops"], "active": true}}',
    o200k_base: 29,
    cl100k_base: 29,
  },
  {
    name: 'emoji with modifiers and ZWJ',
    text: '👋🏽 Hello! 🎉🚀 family: 👨‍👩‍👧‍👦',
    o200k_base: 23,
    cl100k_base: 33,
  },
  {
    name: 'special token text counts as text',
    text: 'text with <|endoftext|> inside',
    o200k_base: 10,
    cl100k_base: 9,
  },
  { name: 'whitespace runs', text: 'a  b\n\n\n   c\t\td  \n', o200k_base: 9, cl100k_base: 9 },
  { name: 'empty', text: '', o200k_base: 0, cl100k_base: 0 },
];

const registry = new TokenizerRegistry({ maxPieces: 64 });
const tokenizers = {} as Record<EncodingName, MemoTokenizer>;
const reference = {} as Record<EncodingName, ReturnType<typeof get_encoding>>;

beforeAll(async () => {
  for (const name of ['o200k_base', 'cl100k_base'] as const) {
    tokenizers[name] = await registry.load(name);
    reference[name] = get_encoding(name);
  }
});

afterAll(() => {
  for (const encoder of Object.values(reference)) encoder.free();
});

describe('MemoTokenizer', () => {
  for (const encoding of ['o200k_base', 'cl100k_base'] as const) {
    describe(encoding, () => {
      it.each(KNOWN)('$name', ({ text, ...expected }) => {
        const tokenizer = tokenizers[encoding];
        expect(tokenizer.count(text)).toBe(expected[encoding]);
        // The memo answers the second time; the count must not change.
        expect(tokenizer.count(text)).toBe(expected[encoding]);
        expect(tokenizer.encode(text)).toHaveLength(expected[encoding]);
      });

      it('matches the reference implementation on random text (memo smaller than the vocabulary seen)', () => {
        const alphabet = fc.constantFrom(
          ...[
            ' ',
            '  ',
            '\n',
            '\n\n',
            '\t',
            '/',
            "'s",
            "'",
            'a',
            'The',
            'ß',
            'é',
            '東京',
            '42',
            '12345',
            '{',
            '"',
            '😀',
            '👍🏽',
            '.',
            '<|endoftext|>',
          ],
        );
        fc.assert(
          fc.property(fc.array(alphabet, { maxLength: 60 }), (parts) => {
            const text = parts.join('');
            expect(tokenizers[encoding].count(text)).toBe(reference[encoding].encode_ordinary(text).length);
          }),
          { numRuns: 300 },
        );
      });
    });
  }

  it('loads each encoding once and shares it', async () => {
    const [a, b] = await Promise.all([registry.load('o200k_base'), registry.load('o200k_base')]);
    expect(a).toBe(b);
    expect(registry.loaded('o200k_base')).toBe(a);
  });
});
