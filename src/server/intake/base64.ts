// Base64 images, raw or as a `data:` URL. The size is checked from the text length
// before decoding, so an oversized string costs no allocation.
import { IrisError } from '../../contract/types.ts';

const DATA_URL = /^data:([^,;]*)((?:;[^,;]*)*?);base64,/i;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function stripDataUrl(value: string): string {
  if (!value.startsWith('data:')) return value;
  const match = DATA_URL.exec(value);
  if (!match) throw new IrisError('BAD_IMAGE', 'a data: URL image must be base64-encoded (data:image/...;base64,...)');
  const mediaType = match[1].toLowerCase();
  if (mediaType !== '' && !mediaType.startsWith('image/') && mediaType !== 'application/octet-stream') {
    throw new IrisError('UNSUPPORTED_IMAGE_FORMAT', `data: URL media type ${mediaType} is not an image`);
  }
  return value.slice(match[0].length);
}

/** Decodes standard or URL-safe base64 (whitespace ignored, padding optional). */
export function decodeBase64Image(value: string, maxBytes: number): Uint8Array {
  const body = stripDataUrl(value.trim()).replace(/\s+/g, '');
  if (body.length === 0) throw new IrisError('BAD_IMAGE', 'the base64 image is empty');
  const decodedBytes = Math.floor((body.replace(/=+$/, '').length * 3) / 4);
  if (decodedBytes > maxBytes) {
    throw new IrisError('IMAGE_TOO_LARGE', `the image is ${decodedBytes} bytes; the limit is ${maxBytes}`);
  }
  if (!BASE64.test(body)) throw new IrisError('BAD_IMAGE', 'the image is not valid base64');
  return new Uint8Array(Buffer.from(body, body.includes('-') || body.includes('_') ? 'base64url' : 'base64'));
}
