// Pixels → the encoder's pixel_values, in transformers.js's exact order and float rounding.
import { IrisError } from '../src/contract/types.ts';
import type { RgbImage } from './image.ts';
import { resampleToPlanes, type ResampleMode } from './resample.ts';

/** The parts of preprocessor_config.json that Iris honours. */
export interface PreprocessorConfig {
  width: number;
  height: number;
  /** PIL resample code: 0 nearest, 2 bilinear, 3 bicubic. */
  resample: ResampleMode;
  doResize: boolean;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
}

const isResampleMode = (mode: number): mode is ResampleMode => mode === 0 || mode === 2 || mode === 3;

export function parsePreprocessorConfig(raw: Record<string, unknown>): PreprocessorConfig {
  const size = raw.size as { height?: number; width?: number } | number | undefined;
  if (typeof size !== 'object' || !size || typeof size.height !== 'number' || typeof size.width !== 'number') {
    // A bare number means "shortest edge" in HF and keeps the aspect ratio: not a fixed-size encoder input.
    throw new IrisError('MODEL_NOT_FOUND', 'preprocessor_config.json: size must be {"height": H, "width": W}');
  }
  const resample = typeof raw.resample === 'number' ? raw.resample : 2;
  if (!isResampleMode(resample)) {
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

/** What each 8-bit channel value becomes: rescaled then normalised, per channel (3 × 256). */
const tables = new WeakMap<PreprocessorConfig, Float32Array>();

/**
 * Rescale and normalise as a table over the 256 byte values, one per channel. Each
 * intermediate is rounded to float32 (Math.fround) because transformers.js stores it in a
 * Float32Array between the steps, so a lookup gives exactly its values.
 */
export function pixelTable(config: PreprocessorConfig): Float32Array {
  let table = tables.get(config);
  if (table) return table;
  table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let b = 0; b < 256; b++) {
      let v = b;
      if (config.doRescale) v = Math.fround(config.rescaleFactor * v);
      if (config.doNormalize) v = Math.fround((v - config.mean[c]) / config.std[c]);
      table[c * 256 + b] = v;
    }
  }
  tables.set(config, table);
  return table;
}

/**
 * Decoded RGB → pixel_values for one image, [3, H, W]: resized as transformers.js resizes
 * (sharp's affine with the config's interpolator, reproduced in resample.ts), rescaled,
 * normalised and laid out channel-first in the same pass.
 */
export function preprocessImage(image: RgbImage, config: PreprocessorConfig): Float32Array {
  const { width, height } = config;
  if (!config.doResize && (image.width !== width || image.height !== height)) {
    throw new IrisError('BAD_IMAGE', `the image is ${image.width}x${image.height} and the model does not resize; it needs ${width}x${height}`);
  }
  return resampleToPlanes(image, width, height, config.resample, pixelTable(config));
}
