// The one place image formats and sizes are checked: a header-only look at the bytes,
// the format from its signature, the size from sharp's metadata (which reads headers and
// decodes no pixels; the common PNG's from its checked chunks, png.ts), so a
// decompression bomb is refused before anything allocates its pixels. The server's intake
// runs it before a request is queued. The decoder (image.ts) checks the signature the same
// way (checkFormat) and leaves the size to sharp's own pixel limit, which is also read
// from the header: one metadata read per image at most.
import sharp from 'sharp';
import { IrisError } from '../src/contract/types.ts';
import { simplePngHeader } from './png.ts';

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'avif' | 'tiff';

export interface ImageProbe {
  readonly format: ImageFormat;
  readonly width: number;
  readonly height: number;
  readonly hasAlpha: boolean;
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.subarray(start, end)).toString('latin1');
}

function startsWith(bytes: Uint8Array, signature: readonly number[]): boolean {
  return signature.every((b, i) => bytes[i] === b);
}

/** The supported format the signature names, or undefined. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (ascii(bytes, 0, 4) === 'GIF8') return 'gif';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (ascii(bytes, 4, 8) === 'ftyp' && /^avi[fs]$/.test(ascii(bytes, 8, 12))) return 'avif';
  return undefined;
}

// Recognisable image (or image-like) formats the service does not take: SVG because
// rendering it would run a document, the rest because the model pipeline does not.
const UNSUPPORTED: ReadonlyArray<readonly [string, (b: Uint8Array) => boolean]> = [
  ['BMP', (b) => ascii(b, 0, 2) === 'BM'],
  ['SVG/XML', (b) => /^\s*(<\?xml|<svg)/i.test(ascii(b, 0, 256))],
  ['ICO', (b) => startsWith(b, [0x00, 0x00, 0x01, 0x00])],
  ['HEIF', (b) => ascii(b, 4, 8) === 'ftyp' && /^(heic|heix|mif1|msf1)$/.test(ascii(b, 8, 12))],
  ['JPEG XL', (b) => startsWith(b, [0xff, 0x0a]) || ascii(b, 4, 8) === 'JXL '],
  ['JPEG 2000', (b) => startsWith(b, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50])],
  ['PDF', (b) => ascii(b, 0, 5) === '%PDF-'],
  ['PSD', (b) => ascii(b, 0, 4) === '8BPS'],
];

/** The supported format the signature names; the stable error for anything else. */
export function checkFormat(bytes: Uint8Array): ImageFormat {
  if (bytes.byteLength === 0) throw new IrisError('BAD_IMAGE', 'image is empty');
  const format = sniffFormat(bytes);
  if (format !== undefined) return format;
  const other = UNSUPPORTED.find(([, test]) => test(bytes));
  if (other) throw new IrisError('UNSUPPORTED_IMAGE_FORMAT', `${other[0]} images are not supported; send PNG, JPEG, WebP, GIF, AVIF or TIFF`);
  throw new IrisError('BAD_IMAGE', 'the bytes are not an image in a known format');
}

export async function probeImage(bytes: Uint8Array, maxPixels: number): Promise<ImageProbe> {
  const format = checkFormat(bytes);
  let width: number | undefined;
  let height: number | undefined;
  let hasAlpha = false;
  const simple = format === 'png' ? simplePngHeader(bytes) : undefined; // the common PNG's size from its chunks (png.ts), no sharp call
  if (simple) ({ width, height } = simple);
  else try {
    // Header only: no pixels are decoded here, so sharp's own pixel guard is not needed and
    // the size check below can say what the size was.
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    width = meta.width;
    height = meta.pageHeight ?? meta.height;
    hasAlpha = meta.hasAlpha ?? false;
  } catch (error) {
    if (/pixel limit/i.test(String(error))) throw new IrisError('IMAGE_TOO_LARGE', `the image has more than ${maxPixels} pixels`);
    throw new IrisError('BAD_IMAGE', `the ${format.toUpperCase()} image cannot be read`);
  }
  if (!width || !height) throw new IrisError('BAD_IMAGE', `the ${format.toUpperCase()} image has no size`);
  if (width * height > maxPixels) {
    throw new IrisError('IMAGE_TOO_LARGE', `the image is ${width}×${height} pixels; the limit is ${maxPixels} pixels`);
  }
  return { format, width, height, hasAlpha };
}
