import { describe, expect, it } from 'vitest';
import { CountCache } from './count-cache.ts';

describe('CountCache', () => {
  it('evicts the least recently used entry when full', () => {
    const cache = new CountCache(2);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1); // a is now the most recent
    cache.set('c', 3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    expect(cache.get('c')).toBe(3);
    expect(cache.size).toBe(2);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 3, misses: 1 });
  });

  it('holds nothing with zero entries', () => {
    const cache = new CountCache(0);
    cache.set('a', 1);
    expect(cache.get('a')).toBeUndefined();
  });

  it('keys depend on encoding and text and are short', () => {
    const long = 'x'.repeat(100_000);
    const key = CountCache.key('o200k_base', long);
    expect(key.length).toBeLessThan(32);
    expect(key).not.toBe(CountCache.key('cl100k_base', long));
    expect(key).not.toBe(CountCache.key('o200k_base', `${long}y`));
    expect(key).toBe(CountCache.key('o200k_base', long));
  });

  it('rejects a negative size', () => {
    expect(() => new CountCache(-1)).toThrow(RangeError);
  });
});
