// One way in for images, whichever of the three inputs a client used: the result is the
// encoded bytes, capped and header-checked, ready for the Generator.
import type { ImagesConfig } from '../../config/config.ts';
import { IrisError } from '../../contract/types.ts';
import { decodeBase64Image } from './base64.ts';
import { createUrlFetcher } from './fetch-url.ts';
import { probeImage, type ImageProbe } from '../../../vision/probe.ts';

/** The GraphQL `ImageInput` (@oneOf: exactly one field is set). */
export interface ImageInput {
  upload?: File | null;
  url?: string | null;
  base64?: string | null;
}

export interface IntakeImage {
  readonly bytes: Uint8Array;
  readonly probe: ImageProbe;
  readonly source: 'upload' | 'url' | 'base64';
}

export interface ImageIntake {
  read(input: ImageInput, signal?: AbortSignal): Promise<IntakeImage>;
}

function tooLarge(bytes: number, maxBytes: number): IrisError {
  return new IrisError('IMAGE_TOO_LARGE', `the image is ${bytes} bytes; the limit is ${maxBytes}`);
}

async function readUpload(file: File, maxBytes: number): Promise<Uint8Array> {
  // The File scalar refuses anything else; this guards direct callers.
  if (typeof (file as Partial<File> | null)?.arrayBuffer !== 'function') throw new IrisError('BAD_IMAGE', 'upload must be a file part of a multipart request');
  if (file.size > maxBytes) throw tooLarge(file.size, maxBytes);
  return new Uint8Array(await file.arrayBuffer());
}

export function createImageIntake(config: ImagesConfig): ImageIntake {
  const urls = createUrlFetcher(config.url, config.maxBytes);
  const readBytes = async (input: ImageInput, signal?: AbortSignal): Promise<[Uint8Array, IntakeImage['source']]> => {
    // The schema's @oneOf already enforces one field; this guards direct callers.
    if (input.upload) return [await readUpload(input.upload, config.maxBytes), 'upload'];
    if (typeof input.url === 'string') return [await urls.fetch(input.url, signal), 'url'];
    if (typeof input.base64 === 'string') return [decodeBase64Image(input.base64, config.maxBytes), 'base64'];
    throw new IrisError('BAD_IMAGE', 'ImageInput needs exactly one of upload, url or base64');
  };
  return {
    async read(input, signal) {
      const [bytes, source] = await readBytes(input, signal);
      if (bytes.length > config.maxBytes) throw tooLarge(bytes.length, config.maxBytes);
      return { bytes, probe: await probeImage(bytes, config.maxPixels), source };
    },
  };
}
