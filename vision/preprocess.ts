// Pixels → the encoder's pixel_values, in transformers.js's exact order and float rounding.
import sharp from 'sharp';
import { IrisError } from '../src/contract/types.ts';
import { toRgb, type RgbImage } from './image.ts';

/** The parts of preprocessor_config.json that Iris honours. */
export interface PreprocessorConfig {
  width: number;
  height: number;
  /** PIL resample code: 0 nearest, 2 bilinear, 3 bicubic. */
  resample: number;
  doResize: boolean;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
}

const INTERPOLATORS: Record<number, 'nearest' | 'bilinear' | 'bicubic'> = { 0: 'nearest', 2: 'bilinear', 3: 'bicubic' };

export function parsePreprocessorConfig(raw: Record<string, unknown>): PreprocessorConfig {
  const size = raw.size as { height?: number; width?: number } | number | undefined;
  if (typeof size !== 'object' || !size || typeof size.height !== 'number' || typeof size.width !== 'number') {
    // A bare number means "shortest edge" in HF and keeps the aspect ratio: not a fixed-size encoder input.
    throw new IrisError('MODEL_NOT_FOUND', 'preprocessor_config.json: size must be {"height": H, "width": W}');
  }
  const resample = typeof raw.resample === 'number' ? raw.resample : 2;
  if (!(resample in INTERPOLATORS)) {
    throw new IrisError('MODEL_NOT_FOUND', `preprocessor_config.json: resample ${resample} is not supported (0, 2 or 3)`);
  }
  return Object.freeze({
    width: size.width,
    height: size.height,
    resample,
    doResize: raw.do_resize !== false,
    doRescale: raw.do_rescale !== false,
    rescaleFactor: typeof raw.rescale_factor === 'number' ? raw.rescale_factor : 1 / 255,
    doNormalize: raw.do_normalize !== false,
    mean: triple(raw.image_mean, 0.5),
    std: triple(raw.image_std, 0.5),
  });
}

function triple(value: unknown, fallback: number): [number, number, number] {
  if (typeof value === 'number') return [value, value, value];
  if (Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'number')) {
    return [value[0], value[1], value[2]];
  }
  return [fallback, fallback, fallback];
}

/**
 * Resize with an affine transform like transformers.js (and PIL): sharp's `resize` uses a
 * different kernel and would break bit-exact parity.
 */
export async function resizeRgb(image: RgbImage, config: PreprocessorConfig): Promise<RgbImage> {
  if (!config.doResize) return image;
  const { width, height } = config;
  const { data, info } = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .affine([width / image.width, 0, 0, height / image.height], { interpolator: INTERPOLATORS[config.resample] })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return toRgb(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.width, info.height, info.channels);
}

/**
 * Rescale, normalize, HWC → CHW. Each intermediate is rounded to float32 (Math.fround)
 * because transformers.js stores it in a Float32Array between the steps.
 */
export function toPixelValues(image: RgbImage, config: PreprocessorConfig): Float32Array {
  const { width, height, data } = image;
  const plane = width * height;
  const out = new Float32Array(3 * plane); // [3, H, W]
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      let v = data[p * 3 + c];
      if (config.doRescale) v = Math.fround(config.rescaleFactor * v);
      if (config.doNormalize) v = Math.fround((v - config.mean[c]) / config.std[c]);
      out[c * plane + p] = v;
    }
  }
  return out;
}

/** Decoded RGB → pixel_values for one image, [3, H, W]. */
export async function preprocessImage(image: RgbImage, config: PreprocessorConfig): Promise<Float32Array> {
  const resized = await resizeRgb(image, config);
  if (resized.width !== config.width || resized.height !== config.height) {
    throw new IrisError('BAD_IMAGE', `resized image is ${resized.width}x${resized.height}, expected ${config.width}x${config.height}`);
  }
  return toPixelValues(resized, config);
}
