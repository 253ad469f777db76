/**
 * BPE encodings from js-tiktoken, loaded from the package itself (the rank tables ship inside
 * `js-tiktoken/ranks/*`, so nothing is fetched at run time) and wrapped in a counter that memoises
 * the token count of each pre-tokenized piece.
 *
 * Why the piece memo: js-tiktoken's BPE merge keys every byte pair by `bytes.join(',')`, about
 * 1 MB/s on prose. tiktoken's own design splits text with a regex into pieces first and merges
 * within each piece only, so the count of a text is exactly the sum of the counts of its pieces.
 * Pieces are words, numbers of at most three digits, punctuation runs and whitespace runs; natural
 * text repeats them (Zipf), so a bounded map from piece to count answers most pieces without
 * running the merge at all. `bench/gateway-tokenizer.ts` measures the effect against the peers.
 */
import type { TiktokenBPE } from 'js-tiktoken/lite';
import { Tiktoken } from 'js-tiktoken/lite';

export const ENCODING_NAMES = ['o200k_base', 'cl100k_base'] as const;
export type EncodingName = (typeof ENCODING_NAMES)[number];

export function isEncodingName(value: string): value is EncodingName {
  return (ENCODING_NAMES as readonly string[]).includes(value);
}

/** Counts tokens of plain text. Special-token strings such as `<|endoftext|>` count as text. */
export interface Tokenizer {
  readonly encoding: EncodingName;
  count(text: string): number;
}

export interface PieceMemoOptions {
  /** Pieces kept per generation; two generations are held, so at most twice this many entries. */
  maxPieces?: number;
  /** Longer pieces (long whitespace or punctuation runs) are rare and are not memoised. */
  maxPieceChars?: number;
}

const DEFAULT_MAX_PIECES = 100_000;
const DEFAULT_MAX_PIECE_CHARS = 48;

/**
 * A tokenizer over one js-tiktoken encoding. The memo is a two-generation map: lookups hit the
 * current generation, then the previous one (promoting the entry); when the current generation is
 * full it becomes the previous one and the oldest is dropped. That bounds memory to
 * 2 x maxPieces entries with O(1) work per piece, and keeps recently used pieces.
 */
export class MemoTokenizer implements Tokenizer {
  readonly encoding: EncodingName;
  readonly #bpe: Tiktoken;
  readonly #pattern: RegExp;
  readonly #maxPieces: number;
  readonly #maxPieceChars: number;
  #current = new Map<string, number>();
  #previous = new Map<string, number>();

  constructor(encoding: EncodingName, ranks: TiktokenBPE, options: PieceMemoOptions = {}) {
    this.encoding = encoding;
    this.#bpe = new Tiktoken(ranks);
    this.#pattern = new RegExp(ranks.pat_str, 'gu');
    this.#maxPieces = options.maxPieces ?? DEFAULT_MAX_PIECES;
    this.#maxPieceChars = options.maxPieceChars ?? DEFAULT_MAX_PIECE_CHARS;
  }

  count(text: string): number {
    if (text.length === 0) return 0;
    const pattern = this.#pattern;
    pattern.lastIndex = 0;
    let total = 0;
    let match = pattern.exec(text);
    while (match !== null) {
      total += this.#pieceCount(match[0]);
      match = pattern.exec(text);
    }
    return total;
  }

  /** Forgets every memoised piece (benchmarks measure the cold path with it). */
  resetMemo(): void {
    this.#current = new Map();
    this.#previous = new Map();
  }

  /** Token ids of a text (for tests and the CLI); uses the plain encoder, not the memo. */
  encode(text: string): number[] {
    return this.#bpe.encode(text, [], []);
  }

  #pieceCount(piece: string): number {
    if (piece.length > this.#maxPieceChars) return this.#bpe.encode(piece, [], []).length;
    const hit = this.#current.get(piece);
    if (hit !== undefined) return hit;
    let count = this.#previous.get(piece);
    if (count === undefined) count = this.#bpe.encode(piece, [], []).length;
    if (this.#current.size >= this.#maxPieces) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#current.set(piece, count);
    return count;
  }
}

async function loadRanks(encoding: EncodingName): Promise<TiktokenBPE> {
  // Static specifiers (not a template) so bundlers and the type checker see both tables.
  switch (encoding) {
    case 'o200k_base':
      return (await import('js-tiktoken/ranks/o200k_base')).default;
    case 'cl100k_base':
      return (await import('js-tiktoken/ranks/cl100k_base')).default;
  }
}

/**
 * Builds each encoding once, on first use (o200k_base takes about a second and ~100 MB to build),
 * and hands the same instance to every caller. One registry per process, created by the command
 * and passed down.
 */
export class TokenizerRegistry {
  readonly #loading = new Map<EncodingName, Promise<MemoTokenizer>>();
  readonly #ready = new Map<EncodingName, MemoTokenizer>();
  readonly #options: PieceMemoOptions;

  constructor(options: PieceMemoOptions = {}) {
    this.#options = options;
  }

  load(encoding: EncodingName): Promise<MemoTokenizer> {
    let pending = this.#loading.get(encoding);
    if (pending === undefined) {
      pending = loadRanks(encoding).then((ranks) => {
        const tokenizer = new MemoTokenizer(encoding, ranks, this.#options);
        this.#ready.set(encoding, tokenizer);
        return tokenizer;
      });
      this.#loading.set(encoding, pending);
    }
    return pending;
  }

  /** The tokenizer if it has finished loading, else undefined. */
  loaded(encoding: EncodingName): MemoTokenizer | undefined {
    return this.#ready.get(encoding);
  }
}
