// The common PNG without sharp: 8-bit grey, RGB or palette, not interlaced, no alpha and
// nothing that changes colours (ICC profile, gamma, EXIF orientation, transparency). Such
// a file's pixels are its inflated scanlines unfiltered, so any correct decoder gives
// sharp's bytes exactly; what sharp costs for a small image (about 1.3 ms of pipeline and
// thread hops for a 128×128 scene) is then a fraction of that. Everything else, and any
// file this reader finds the slightest fault in (a bad CRC, a short or long stream, a
// missing IEND, a chunk it does not know) is left to sharp, which decodes it or gives the
// documented error. Bytes after IEND are ignored, as sharp ignores them.
import { crc32, inflateSync } from 'node:zlib';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Ancillary chunks that do not change the decoded pixels of an image without alpha. */
const HARMLESS = new Set(['pHYs', 'tEXt', 'zTXt', 'iTXt', 'tIME', 'bKGD', 'sRGB', 'hIST', 'sPLT']);
/** Colour types taken: grey, RGB, palette (channels per pixel in the scanlines). */
const CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1 };

/** RGB pixels, row-major, one byte per channel (image.ts's RgbImage). */
export interface PngPixels {
  readonly data: Uint8Array; // [height, width, 3]
  readonly width: number;
  readonly height: number;
}

interface Parsed {
  readonly width: number;
  readonly height: number;
  readonly colorType: number;
  readonly palette?: Uint8Array;
  readonly idat: Uint8Array[];
}

/** The size of a PNG the fast path decodes (see decodeSimplePng), read from its checked chunks; undefined for any other. */
export function simplePngHeader(bytes: Uint8Array): { width: number; height: number } | undefined {
  const parsed = parse(bytes);
  return parsed && { width: parsed.width, height: parsed.height };
}

/** The RGB pixels of a simple PNG (see the top of this file), or undefined: decode it with sharp. */
export function decodeSimplePng(bytes: Uint8Array, maxPixels: number): PngPixels | undefined {
  const png = parse(bytes);
  if (!png || png.width * png.height > maxPixels) return undefined;
  const { width, height, colorType, palette } = png;
  const channels = CHANNELS[colorType];
  const stride = width * channels;
  const expected = height * (stride + 1);
  let raw: Buffer;
  try {
    raw = inflateSync(png.idat.length === 1 ? png.idat[0] : Buffer.concat(png.idat), { maxOutputLength: expected + 1 }); // a truncated stream throws
  } catch {
    return undefined;
  }
  if (raw.length !== expected) return undefined;
  const lines = unfilter(raw, height, stride, channels);
  if (!lines) return undefined;
  if (colorType === 2) return { data: lines, width, height };
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const v = lines[p];
    if (colorType === 0) {
      out[3 * p] = out[3 * p + 1] = out[3 * p + 2] = v;
    } else {
      if (3 * v + 2 >= palette!.length) return undefined; // an index past the palette
      out[3 * p] = palette![3 * v];
      out[3 * p + 1] = palette![3 * v + 1];
      out[3 * p + 2] = palette![3 * v + 2];
    }
  }
  return { data: out, width, height };
}

/** Chunks checked (CRC, order, kinds); undefined unless the file is a simple PNG. */
function parse(bytes: Uint8Array): Parsed | undefined {
  if (bytes.length < 8 + 25 + 12 || !SIGNATURE.every((b, i) => bytes[i] === b)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let header: { width: number; height: number; colorType: number } | undefined;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let isIdatDone = false;
  for (;;) {
    if (at + 12 > bytes.length) return undefined;
    const length = view.getUint32(at);
    if (length > bytes.length - at - 12) return undefined;
    const type = String.fromCharCode(bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]);
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== view.getUint32(at + 8 + length)) return undefined;
    at += 12 + length;
    if (!header) {
      if (type !== 'IHDR' || length !== 13) return undefined;
      const [width, height] = [view.getUint32(at - length - 4), view.getUint32(at - length)];
      const [depth, colorType, compression, filter, interlace] = data.subarray(8, 13);
      if (width === 0 || height === 0 || width > 2 ** 31 - 1 || height > 2 ** 31 - 1) return undefined;
      if (depth !== 8 || !(colorType in CHANNELS) || compression !== 0 || filter !== 0 || interlace !== 0) return undefined;
      header = { width, height, colorType };
      continue;
    }
    if (type === 'IEND') {
      if (length !== 0 || idat.length === 0) return undefined; // bytes after IEND are ignored, as sharp ignores them
      if (header.colorType === 3 && !palette) return undefined;
      return { ...header, palette, idat };
    }
    if (type === 'IDAT') {
      if (isIdatDone) return undefined; // IDAT chunks must be consecutive
      idat.push(data);
      continue;
    }
    if (idat.length > 0) isIdatDone = true;
    if (type === 'PLTE') {
      if (palette || idat.length > 0 || length === 0 || length % 3 !== 0 || length > 768) return undefined;
      palette = data;
      continue;
    }
    if (!HARMLESS.has(type)) return undefined; // tRNS, gAMA, cHRM, iCCP, eXIf, sBIT, an unknown or misplaced chunk: sharp's call
  }
}

/** PNG's five scanline filters undone (8-bit samples: a pixel's left neighbour is `channels` bytes back). */
function unfilter(raw: Uint8Array, height: number, stride: number, channels: number): Uint8Array | undefined {
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const prev = row - stride; // the row above (y > 0)
    switch (filter) {
      case 0:
        out.set(raw.subarray(src, src + stride), row);
        break;
      case 1:
        for (let x = 0; x < stride; x++) out[row + x] = raw[src + x] + (x >= channels ? out[row + x - channels] : 0);
        break;
      case 2:
        for (let x = 0; x < stride; x++) out[row + x] = raw[src + x] + (y > 0 ? out[prev + x] : 0);
        break;
      case 3:
        for (let x = 0; x < stride; x++) {
          const left = x >= channels ? out[row + x - channels] : 0;
          const up = y > 0 ? out[prev + x] : 0;
          out[row + x] = raw[src + x] + ((left + up) >> 1);
        }
        break;
      case 4:
        for (let x = 0; x < stride; x++) {
          const a = x >= channels ? out[row + x - channels] : 0;
          const b = y > 0 ? out[prev + x] : 0;
          const c = x >= channels && y > 0 ? out[prev + x - channels] : 0;
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          out[row + x] = raw[src + x] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
        }
        break;
      default:
        return undefined; // not a PNG filter type
    }
  }
  return out;
}
