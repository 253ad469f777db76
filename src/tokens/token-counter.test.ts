import { beforeAll, describe, expect, it } from 'vitest';
import { CountCache } from './count-cache.ts';
import type { Tokenizer } from './encodings.ts';
import { type MemoTokenizer, TokenizerRegistry } from './encodings.ts';
import { TokenCounter } from './token-counter.ts';

let o200k: MemoTokenizer;
beforeAll(async () => {
  o200k = await new TokenizerRegistry().load('o200k_base');
});

/** Wraps a tokenizer to record what it was asked to count and to advance a fake clock. */
function recording(inner: Tokenizer, clock: { ms: number }, msPerCall: number) {
  const calls: string[] = [];
  const tokenizer: Tokenizer = {
    encoding: inner.encoding,
    count(text) {
      calls.push(text);
      clock.ms += msPerCall;
      return inner.count(text);
    },
  };
  return { tokenizer, calls };
}

const paragraph = (i: number) =>
  `Paragraph ${i}: ${'the quick brown fox jumps over the lazy dog '.repeat(8)}`;

describe('TokenCounter', () => {
  it('counts exactly and tokenizes a repeated paragraph once', async () => {
    const clock = { ms: 0 };
    const { tokenizer, calls } = recording(o200k, clock, 0);
    const counter = new TokenCounter({ cache: new CountCache(100), nowMs: () => clock.ms });
    const text = `${paragraph(1)}\n\n${paragraph(2)}\n\nshort tail`;
    const first = await counter.count(tokenizer, text);
    expect(first).toBe(o200k.count(text));
    const tokenizedFirst = calls.length;
    const second = await counter.count(tokenizer, `${paragraph(2)}\n\nanother question`);
    expect(second).toBe(o200k.count(`${paragraph(2)}\n\nanother question`));
    // Only the new short paragraph was tokenized the second time.
    expect(calls.slice(tokenizedFirst)).toEqual(['another question']);
    expect(counter.cache.hits).toBe(1);
    expect(counter.countSync(tokenizer, text)).toBe(first);
  });

  it('yields to the event loop when a long text exceeds the time budget', async () => {
    const clock = { ms: 0 };
    const { tokenizer, calls } = recording(o200k, clock, 2); // each slice "takes" 2 ms
    let yields = 0;
    const counter = new TokenCounter({
      cache: new CountCache(10),
      sliceChars: 1000,
      sliceBudgetMs: 5,
      nowMs: () => clock.ms,
      yieldToEventLoop: async () => {
        yields++;
      },
    });
    const text = 'lorem ipsum dolor sit amet '.repeat(1000); // 27,000 chars, ~27 slices
    expect(await counter.count(tokenizer, text)).toBe(o200k.count(text));
    expect(calls.length).toBeGreaterThanOrEqual(27);
    // 2 ms per slice and a 5 ms budget: a yield every 3 slices.
    expect(yields).toBeGreaterThanOrEqual(Math.floor(calls.length / 3) - 1);
    expect(counter.yields).toBe(yields);
  });

  it('does not yield for short texts', async () => {
    let yields = 0;
    const counter = new TokenCounter({
      cache: new CountCache(10),
      yieldToEventLoop: async () => {
        yields++;
      },
    });
    await counter.count(o200k, 'hello');
    expect(yields).toBe(0);
  });

  it('lets timers run while counting a megabyte in production mode', async () => {
    const counter = new TokenCounter({ cache: new CountCache(10), sliceBudgetMs: 2 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const words = Array.from({ length: 150_000 }, (_, i) => `w${i.toString(36)}`).join(' ');
    const count = await counter.count(o200k, words);
    clearInterval(timer);
    expect(count).toBe(o200k.count(words));
    expect(counter.yields).toBeGreaterThan(0);
    expect(ticks).toBeGreaterThan(0);
  });
});
