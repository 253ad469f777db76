/**
 * Where a text can be cut so that counting the two halves separately gives exactly the count of
 * the whole. This is what lets the count cache work per paragraph and lets long prompts be counted
 * in slices with the event loop free in between, without changing a single token.
 *
 * Why it is exact: tiktoken encodings (o200k_base, cl100k_base) first split text with one regex
 * into pieces, then run BPE inside each piece only. Cutting at a piece boundary therefore keeps
 * every piece, provided the regex scan of the second half starts where the whole-text scan would
 * have started a piece, and the first half's last piece does not change for lack of what followed.
 * The regex has no look-behind, and its only look-ahead, `\s+(?!\S)`, applies to whitespace runs.
 * Reading the two patterns (printed in `encodings.ts` tests):
 *
 * - No piece contains a non-whitespace character followed by a space: words are letters and marks
 *   with an optional one-character prefix, numbers are digits, punctuation runs may start with one
 *   space and end with newlines (and `/` in o200k_base), and whitespace runs hold only whitespace.
 *   So "x|␠…" (cut before a space that follows a non-space) is a piece boundary, and the first half
 *   ends in a non-space, whose piece does not depend on look-ahead.
 * - No piece contains a newline followed by a non-whitespace character other than `/` (o200k_base's
 *   punctuation runs may end in `[\r\n/]*`). So "\n|x" is a piece boundary, and the first half ends
 *   in a newline run, which `\s*[\r\n]+` (tried before `\s+(?!\S)`) matches the same way whether or
 *   not text follows.
 *
 * `safe-split.test.ts` checks the property against the real encoders on random strings built from
 * the characters that matter (spaces, newlines, `/`, apostrophes, letters, digits, CJK, emoji).
 */

/** Whitespace as JavaScript's `\s` defines it (the class the tiktoken regex uses). */
export function isWhitespaceCode(code: number): boolean {
  if (code <= 32) return code === 32 || (code >= 9 && code <= 13);
  if (code < 0xa0) return false;
  return (
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

const SPACE = 32;
const NEWLINE = 10;
const SLASH = 47;

/** True when text can be cut before index i without changing its token count. */
export function isSafeCut(text: string, i: number): boolean {
  if (i <= 0 || i >= text.length) return false;
  const before = text.charCodeAt(i - 1);
  const at = text.charCodeAt(i);
  if (at === SPACE && !isWhitespaceCode(before)) return true;
  return before === NEWLINE && at !== SLASH && !isWhitespaceCode(at);
}

/**
 * Cuts after each blank line that is followed by text (paragraphs, retrieved chunks separated by a
 * blank line, sections of a system prompt). These boundaries depend only on the content around
 * them, so the same paragraph produces the same cache key in every request that contains it.
 */
export function splitParagraphs(text: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let from = 0;
  for (;;) {
    const blank = text.indexOf('\n\n', from);
    if (blank === -1) break;
    let cut = blank + 2;
    while (cut < text.length && text.charCodeAt(cut) === NEWLINE) cut++;
    if (isSafeCut(text, cut)) {
      parts.push(text.slice(start, cut));
      start = cut;
    }
    from = cut;
  }
  parts.push(text.slice(start));
  return parts;
}

/**
 * Cuts text into slices of about maxChars (never shorter than half of it, except the last), each
 * at a safe cut. A stretch with no safe cut at all (a long base64 blob) stays in one slice.
 */
export function sliceAtSafeCuts(text: string, maxChars: number): string[] {
  if (text.length <= maxChars) return [text];
  const slices: string[] = [];
  let start = 0;
  while (text.length - start > maxChars) {
    const target = start + maxChars;
    let cut = -1;
    for (let i = target; i > start + (maxChars >> 1); i--) {
      if (isSafeCut(text, i)) {
        cut = i;
        break;
      }
    }
    if (cut === -1) {
      for (let i = target + 1; i < text.length; i++) {
        if (isSafeCut(text, i)) {
          cut = i;
          break;
        }
      }
    }
    if (cut === -1) break;
    slices.push(text.slice(start, cut));
    start = cut;
  }
  slices.push(text.slice(start));
  return slices;
}
