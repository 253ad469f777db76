/**
 * Image input tokens by the tile formula OpenAI documents for its vision models (platform docs,
 * "Images and vision", calculating costs), which many OpenAI-compatible servers' clients assume:
 *
 * 1. `detail: "low"` costs a flat `lowDetailTokens` (85 for gpt-4o).
 * 2. Otherwise (`high`, and `auto`, counted as `high` because it is the upper bound) the image is
 *    scaled to fit within `maxSidePixels` x `maxSidePixels` (2048), then scaled down so its shorter
 *    side is at most `shortSidePixels` (768); it is never scaled up.
 * 3. The result is cut into `tilePixels` squares (512): tokens = baseTokens + tileTokens x tiles.
 *
 * Worked example (gpt-4o: base 85, tile 170): a 2048 x 4096 image fits as 1024 x 2048, then
 * 768 x 1536, which is 2 x 3 = 6 tiles, so 85 + 170 x 6 = 1,105 tokens. A 1024 x 1024 image is
 * 768 x 768, 4 tiles, 765 tokens.
 *
 * Patch-based open models fit the same formula: Qwen2-VL's 28-pixel patches (one token each, no
 * base, no resizing) are `{tilePixels: 28, tileTokens: 1, baseTokens: 0, shortSidePixels: null}`.
 * When the size cannot be read (a remote URL), `defaultWidthPixels` x `defaultHeightPixels` is assumed.
 */

export interface ImageTokenRule {
  lowDetailTokens: number;
  baseTokens: number;
  tileTokens: number;
  tilePixels: number;
  maxSidePixels: number;
  /** Shorter side after downscaling; null to skip that step. */
  shortSidePixels: number | null;
  defaultWidthPixels: number;
  defaultHeightPixels: number;
}

export const DEFAULT_IMAGE_TOKENS: ImageTokenRule = {
  lowDetailTokens: 85,
  baseTokens: 85,
  tileTokens: 170,
  tilePixels: 512,
  maxSidePixels: 2048,
  shortSidePixels: 768,
  defaultWidthPixels: 1024,
  defaultHeightPixels: 1024,
};

export type ImageDetail = 'low' | 'high' | 'auto';

export interface ImageSize {
  widthPixels: number;
  heightPixels: number;
}

export function imageTokens(rule: ImageTokenRule, size: ImageSize | undefined, detail: ImageDetail): number {
  if (detail === 'low') return rule.lowDetailTokens;
  let width = size?.widthPixels ?? rule.defaultWidthPixels;
  let height = size?.heightPixels ?? rule.defaultHeightPixels;
  const fit = Math.min(1, rule.maxSidePixels / Math.max(width, height));
  width *= fit;
  height *= fit;
  if (rule.shortSidePixels !== null) {
    const shrink = Math.min(1, rule.shortSidePixels / Math.min(width, height));
    width *= shrink;
    height *= shrink;
  }
  const tiles = Math.ceil(width / rule.tilePixels) * Math.ceil(height / rule.tilePixels);
  return rule.baseTokens + rule.tileTokens * tiles;
}

/** Reads width and height from the header of a PNG, GIF, JPEG or WebP file; undefined otherwise. */
export function sniffImageSize(bytes: Uint8Array): ImageSize | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  const ascii = (offset: number, length: number) =>
    offset + length <= n ? String.fromCharCode(...bytes.subarray(offset, offset + length)) : '';
  if (n >= 24 && bytes[0] === 0x89 && ascii(1, 3) === 'PNG') {
    return valid(view.getUint32(16), view.getUint32(20));
  }
  if (n >= 10 && ascii(0, 4) === 'GIF8') {
    return valid(view.getUint16(6, true), view.getUint16(8, true));
  }
  if (n >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) return jpegSize(bytes, view);
  if (n >= 30 && ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') return webpSize(bytes, view, ascii(12, 4));
  return undefined;
}

function valid(width: number, height: number): ImageSize | undefined {
  return width > 0 && height > 0 ? { widthPixels: width, heightPixels: height } : undefined;
}

function jpegSize(bytes: Uint8Array, view: DataView): ImageSize | undefined {
  let offset = 2;
  while (offset + 9 <= bytes.length) {
    if (bytes[offset] !== 0xff) return undefined;
    const marker = bytes[offset + 1] ?? 0;
    if (marker === 0xff) {
      offset++; // fill byte
      continue;
    }
    // Start-of-frame markers carry the size: C0-C3, C5-C7, C9-CB, CD-CF (C4, C8, CC are not frames).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return valid(view.getUint16(offset + 7), view.getUint16(offset + 5));
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      offset += 2; // markers without a length
      continue;
    }
    offset += 2 + view.getUint16(offset + 2);
  }
  return undefined;
}

function webpSize(bytes: Uint8Array, view: DataView, chunk: string): ImageSize | undefined {
  const b = (i: number) => bytes[i] ?? 0;
  if (chunk === 'VP8 ') return valid(view.getUint16(26, true) & 0x3fff, view.getUint16(28, true) & 0x3fff);
  if (chunk === 'VP8L') {
    return valid(
      1 + (b(21) | ((b(22) & 0x3f) << 8)),
      1 + ((b(22) >> 6) | (b(23) << 2) | ((b(24) & 0x0f) << 10)),
    );
  }
  if (chunk === 'VP8X')
    return valid(1 + (b(24) | (b(25) << 8) | (b(26) << 16)), 1 + (b(27) | (b(28) << 8) | (b(29) << 16)));
  return undefined;
}

/** Base64 characters decoded at most to find the size; JPEG headers may sit after large EXIF blocks. */
const MAX_SNIFF_BASE64_CHARS = 1 << 20;

/** Size of an image given as a `data:` URL; undefined for remote URLs or unreadable data. */
export function dataUrlImageSize(url: string): ImageSize | undefined {
  if (!url.startsWith('data:')) return undefined;
  const comma = url.indexOf(',');
  if (comma === -1 || !url.slice(0, comma).endsWith(';base64')) return undefined;
  // Decode a prefix first (enough for PNG, GIF, WebP and most JPEGs), then a larger one for JPEGs.
  for (const chars of [4096, MAX_SNIFF_BASE64_CHARS]) {
    const end = Math.min(url.length, comma + 1 + chars);
    const prefix = url.slice(comma + 1, end - ((end - comma - 1) % 4));
    const size = sniffImageSize(Buffer.from(prefix, 'base64'));
    if (size !== undefined || end === url.length) return size;
  }
  return undefined;
}
