import { describe, expect, it } from 'vitest';
import { DEFAULT_IMAGE_TOKENS, dataUrlImageSize, imageTokens, sniffImageSize } from './image-tokens.ts';

describe('imageTokens (OpenAI tile formula)', () => {
  it.each([
    // The worked examples of OpenAI's vision guide.
    { w: 1024, h: 1024, detail: 'high', tokens: 765, why: '768x768 -> 4 tiles' },
    { w: 2048, h: 4096, detail: 'high', tokens: 1105, why: '1024x2048 -> 768x1536 -> 6 tiles' },
    { w: 4096, h: 8192, detail: 'low', tokens: 85, why: 'low detail is flat' },
    { w: 512, h: 512, detail: 'auto', tokens: 255, why: 'never scaled up: 1 tile' },
    { w: 1000, h: 500, detail: 'high', tokens: 425, why: 'short side under 768: 2 x 1 tiles' },
  ] as const)('$w x $h $detail: $why', ({ w, h, detail, tokens }) => {
    expect(imageTokens(DEFAULT_IMAGE_TOKENS, { widthPixels: w, heightPixels: h }, detail)).toBe(tokens);
  });

  it('assumes the default size when unknown', () => {
    expect(imageTokens(DEFAULT_IMAGE_TOKENS, undefined, 'auto')).toBe(765);
  });

  it('fits patch-based models: 28-pixel patches, one token each', () => {
    const qwen = {
      ...DEFAULT_IMAGE_TOKENS,
      baseTokens: 0,
      tileTokens: 1,
      tilePixels: 28,
      shortSidePixels: null,
    };
    expect(imageTokens(qwen, { widthPixels: 560, heightPixels: 280 }, 'high')).toBe(20 * 10);
  });
});

function png(w: number, h: number): Uint8Array {
  const b = new Uint8Array(33);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  new DataView(b.buffer).setUint32(16, w);
  new DataView(b.buffer).setUint32(20, h);
  return b;
}

function jpeg(w: number, h: number): Uint8Array {
  // SOI, an APP0 segment of 16 bytes, then SOF0 with precision, height, width.
  const b = new Uint8Array([
    0xff,
    0xd8,
    0xff,
    0xe0,
    0,
    16,
    ...new Array(14).fill(0),
    0xff,
    0xc0,
    0,
    17,
    8,
    0,
    0,
    0,
    0,
    3,
  ]);
  new DataView(b.buffer).setUint16(25, h);
  new DataView(b.buffer).setUint16(27, w);
  return b;
}

function gif(w: number, h: number): Uint8Array {
  const b = new Uint8Array(13);
  b.set([0x47, 0x49, 0x46, 0x38, 0x39, 0x61]);
  new DataView(b.buffer).setUint16(6, w, true);
  new DataView(b.buffer).setUint16(8, h, true);
  return b;
}

function webpVp8x(w: number, h: number): Uint8Array {
  const b = new Uint8Array(30);
  b.set(new TextEncoder().encode('RIFF'), 0);
  b.set(new TextEncoder().encode('WEBPVP8X'), 8);
  b.set(
    [
      (w - 1) & 0xff,
      ((w - 1) >> 8) & 0xff,
      (w - 1) >> 16,
      (h - 1) & 0xff,
      ((h - 1) >> 8) & 0xff,
      (h - 1) >> 16,
    ],
    24,
  );
  return b;
}

describe('sniffImageSize', () => {
  it.each([
    { name: 'PNG', bytes: png(800, 600) },
    { name: 'JPEG', bytes: jpeg(800, 600) },
    { name: 'GIF', bytes: gif(800, 600) },
    { name: 'WebP VP8X', bytes: webpVp8x(800, 600) },
  ])('$name', ({ bytes }) => {
    expect(sniffImageSize(bytes)).toEqual({ widthPixels: 800, heightPixels: 600 });
  });

  it('returns undefined for unknown or truncated data', () => {
    expect(sniffImageSize(new Uint8Array([1, 2, 3]))).toBeUndefined();
    expect(sniffImageSize(png(800, 600).subarray(0, 20))).toBeUndefined();
  });
});

describe('dataUrlImageSize', () => {
  it('reads a base64 data URL and ignores remote URLs', () => {
    const url = `data:image/png;base64,${Buffer.from(png(1920, 1080)).toString('base64')}`;
    expect(dataUrlImageSize(url)).toEqual({ widthPixels: 1920, heightPixels: 1080 });
    expect(dataUrlImageSize('https://example.invalid/cat.png')).toBeUndefined();
    expect(dataUrlImageSize('data:image/png,rawdata')).toBeUndefined();
  });

  it('finds a JPEG frame behind a large metadata block', () => {
    const exif = new Uint8Array(20_002); // marker (2 bytes) + a length of 20,000 that counts its own 2 bytes
    exif.set([0xff, 0xe1, 0x4e, 0x20]); // APP1 of 20,000 bytes
    const head = jpeg(640, 480);
    const bytes = new Uint8Array([...head.subarray(0, 2), ...exif, ...head.subarray(2)]);
    const url = `data:image/jpeg;base64,${Buffer.from(bytes).toString('base64')}`;
    expect(dataUrlImageSize(url)).toEqual({ widthPixels: 640, heightPixels: 480 });
  });
});
