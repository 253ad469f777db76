import { hash } from 'node:crypto';
import type { EncodingName } from './encodings.ts';

/**
 * Token counts of text segments, keyed by a hash of the encoding and the text, least recently
 * used first out. Keys are 27-character base64 SHA-1 digests, so an entry costs about 150 bytes
 * whatever the size of the segment it stands for: 10,000 entries (the default) hold roughly
 * 1.5 MB while remembering the counts of megabytes of system prompts and retrieved chunks.
 *
 * SHA-1 is used for speed and spread, not security: a collision would only mis-count one segment.
 */
export class CountCache {
  readonly maxEntries: number;
  #entries = new Map<string, number>();
  #hits = 0;
  #misses = 0;

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 0) {
      throw new RangeError(`maxEntries must be a non-negative integer, got ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
  }

  static key(encoding: EncodingName, text: string): string {
    return `${encoding.charAt(0)}${hash('sha1', text, 'base64')}`;
  }

  get(key: string): number | undefined {
    const count = this.#entries.get(key);
    if (count === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    // Re-insert so Map iteration order stays least-recently-used first.
    this.#entries.delete(key);
    this.#entries.set(key, count);
    return count;
  }

  set(key: string, count: number): void {
    if (this.maxEntries === 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, count);
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  get hits(): number {
    return this.#hits;
  }

  get misses(): number {
    return this.#misses;
  }
}
