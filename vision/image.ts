// Decoding untrusted image bytes into RGB pixels, with the failure modes named.
import sharp, { type Metadata } from 'sharp';
import { IrisError } from '../src/contract/types.ts';

/** RGB pixels, row-major HWC, one byte per channel. */
export interface RgbImage {
  data: Uint8Array; // [height, width, 3]
  width: number;
  height: number;
}

export interface DecodeLimits {
  /** Largest width × height accepted before decoding (decompression-bomb guard). */
  maxPixels: number;
}

// SVG is left out on purpose: rendering untrusted SVG can reach external resources.
const SUPPORTED_FORMATS = new Set(['png', 'jpeg', 'webp', 'gif', 'heif', 'avif', 'tiff']);

/**
 * Decode any format sharp reads (GIF: first frame), apply EXIF orientation, and flatten
 * alpha onto white — the background the shapes-world trainer composites onto. For opaque
 * images this is byte-identical to transformers.js, which drops the alpha channel instead.
 */
export async function decodeImage(bytes: Uint8Array, limits: DecodeLimits): Promise<RgbImage> {
  if (bytes.byteLength === 0) throw new IrisError('BAD_IMAGE', 'image is empty');
  const meta = await readMetadata(bytes, limits);
  try {
    let img = sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error' }).rotate();
    if (meta.hasAlpha) img = img.flatten({ background: { r: 255, g: 255, b: 255 } });
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    return toRgb(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.width, info.height, info.channels);
  } catch (err) {
    throw asImageError(err);
  }
}

async function readMetadata(bytes: Uint8Array, limits: DecodeLimits): Promise<Metadata> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: limits.maxPixels }).metadata();
  } catch (err) {
    throw asImageError(err);
  }
  if (!meta.format || !SUPPORTED_FORMATS.has(meta.format)) {
    throw new IrisError('UNSUPPORTED_IMAGE_FORMAT', `unsupported image format: ${meta.format ?? 'unknown'}`);
  }
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (pixels > limits.maxPixels) {
    throw new IrisError('IMAGE_TOO_LARGE', `image has ${meta.width}x${meta.height} pixels; the limit is ${limits.maxPixels} pixels`);
  }
  if (pixels === 0) throw new IrisError('BAD_IMAGE', 'image has no pixels');
  return meta;
}

function asImageError(err: unknown): IrisError {
  if (err instanceof IrisError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/unsupported image format/i.test(message)) {
    return new IrisError('UNSUPPORTED_IMAGE_FORMAT', 'unsupported or unrecognised image format');
  }
  if (/pixel limit/i.test(message)) return new IrisError('IMAGE_TOO_LARGE', 'image exceeds the pixel limit');
  return new IrisError('BAD_IMAGE', `cannot decode image: ${message}`);
}

/** Grey, grey+alpha, RGB or RGBA → RGB (alpha already flattened, so it is just dropped). */
export function toRgb(data: Uint8Array, width: number, height: number, channels: number): RgbImage {
  if (channels === 3) return { data, width, height };
  if (channels < 1 || channels > 4) throw new IrisError('BAD_IMAGE', `unsupported channel count ${channels}`);
  const out = new Uint8Array(width * height * 3);
  const isGrey = channels <= 2;
  for (let p = 0, i = 0; p < width * height; p++, i += channels) {
    out[p * 3] = data[i];
    out[p * 3 + 1] = isGrey ? data[i] : data[i + 1];
    out[p * 3 + 2] = isGrey ? data[i] : data[i + 2];
  }
  return { data: out, width, height };
}
