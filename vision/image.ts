// Decoding untrusted image bytes into RGB pixels, with the failure modes named.
import sharp from 'sharp';
import { IrisError } from '../src/contract/types.ts';
import { decodeSimplePng } from './png.ts';
import { checkFormat } from './probe.ts';

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

/**
 * Decode a supported format (probe.ts; GIF: first frame), apply EXIF orientation, and flatten
 * alpha onto white — the background the shapes-world trainer composites onto. For opaque
 * images this is byte-identical to transformers.js, which drops the alpha channel instead.
 * One sharp pipeline and no separate metadata read: the signature is checked here, the
 * size by sharp's pixel limit from the header before any pixel is decoded, and flatten is
 * a no-op on images without alpha. The common PNG (8-bit grey, RGB or palette, opaque,
 * no colour chunks) skips sharp: its pixels are its scanlines (png.ts).
 */
export async function decodeImage(bytes: Uint8Array, limits: DecodeLimits): Promise<RgbImage> {
  if (checkFormat(bytes) === 'png') {
    const simple = decodeSimplePng(bytes, limits.maxPixels); // the common PNG, without sharp's pipeline (png.ts)
    if (simple) return simple;
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error' })
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .raw()
      .toBuffer({ resolveWithObject: true });
    return toRgb(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.width, info.height, info.channels);
  } catch (err) {
    throw asImageError(err, limits.maxPixels);
  }
}

function asImageError(err: unknown, maxPixels: number): IrisError {
  if (err instanceof IrisError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/unsupported image format/i.test(message)) {
    return new IrisError('UNSUPPORTED_IMAGE_FORMAT', 'unsupported or unrecognised image format');
  }
  if (/pixel limit/i.test(message)) return new IrisError('IMAGE_TOO_LARGE', `the image has more than ${maxPixels} pixels`);
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
