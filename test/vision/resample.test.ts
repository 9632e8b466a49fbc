// resample.ts against what it reproduces: sharp's affine (the call transformers.js makes
// to resize in Node), value for value, for each interpolator, down- and upscales, odd
// aspect ratios, edge sizes, noise and smooth content.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parsePreprocessorConfig, pixelTable, preprocessImage } from '../../vision/preprocess.ts';
import { resampleToPlanes, type ResampleMode } from '../../vision/resample.ts';

const IDENTITY = Float32Array.from({ length: 768 }, (_, i) => i % 256);
const INTERPOLATOR = { 0: 'nearest', 2: 'bilinear', 3: 'bicubic' } as const;

function pixels(width: number, height: number, seed: number, kind: 'noise' | 'smooth'): Uint8Array {
  let s = seed;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    data[i] = kind === 'noise' ? s >> 23 : Math.floor(128 + 100 * Math.sin((i / 3) * 0.05 + seed));
  }
  return data;
}

async function sharpAffine(data: Uint8Array, w: number, h: number, outW: number, outH: number, mode: ResampleMode): Promise<Uint8Array> {
  const { data: out, info } = await sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .affine([outW / w, 0, 0, outH / h], { interpolator: INTERPOLATOR[mode] })
    .raw()
    .toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).toEqual([outW, outH, 3]);
  return new Uint8Array(out);
}

/** Values that differ between sharp's HWC bytes and our CHW planes (identity table). */
function differences(reference: Uint8Array, planes: Float32Array, outW: number, outH: number): number {
  const plane = outW * outH;
  let count = 0;
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) if (reference[p * 3 + c] !== planes[c * plane + p]) count++;
  return count;
}

const SOURCES = [[128, 128], [64, 64], [65, 63], [37, 91], [300, 200], [1000, 700], [129, 127], [1, 1], [2, 3], [17, 999], [999, 17], [200, 13], [7, 5], [640, 480], [333, 777]] as const;
const OUTPUTS = [[64, 64], [224, 224], [50, 30]] as const;

describe('resampleToPlanes', () => {
  for (const mode of [2, 0, 3] as const) {
    it(`reproduces sharp's ${INTERPOLATOR[mode]} affine exactly`, async () => {
      const mismatches: string[] = [];
      for (const [outW, outH] of OUTPUTS) {
        for (const [w, h] of SOURCES) {
          for (const kind of ['noise', 'smooth'] as const) {
            const data = pixels(w, h, w * 31 + h, kind);
            const reference = await sharpAffine(data, w, h, outW, outH, mode);
            const n = differences(reference, resampleToPlanes({ data, width: w, height: h }, outW, outH, mode, IDENTITY), outW, outH);
            if (n > 0) mismatches.push(`${w}x${h} -> ${outW}x${outH} ${kind}: ${n} values`);
          }
        }
      }
      expect(mismatches).toEqual([]);
    });
  }

  it('passes an image already at the output size through unchanged', () => {
    const data = pixels(64, 64, 5, 'noise');
    const planes = resampleToPlanes({ data, width: 64, height: 64 }, 64, 64, 2, IDENTITY);
    expect(differences(data, planes, 64, 64)).toBe(0);
  });

  it('refuses pixel data that does not match the stated size', () => {
    expect(() => resampleToPlanes({ data: new Uint8Array(10), width: 4, height: 4 }, 8, 8, 2, IDENTITY)).toThrow(RangeError);
  });
});

describe('preprocessImage', () => {
  const config = parsePreprocessorConfig({ size: { height: 64, width: 64 }, resample: 2, image_mean: [0.48, 0.45, 0.4], image_std: [0.26, 0.26, 0.27] });

  it('is the resized bytes through the rescale/normalise table, channel-first', async () => {
    const data = pixels(90, 70, 3, 'smooth');
    const resized = await sharpAffine(data, 90, 70, 64, 64, 2);
    const ours = preprocessImage({ data, width: 90, height: 70 }, config);
    const plane = 64 * 64;
    for (const p of [0, 1, 777, plane - 1]) {
      for (let c = 0; c < 3; c++) {
        // The table's entry is transformers.js's arithmetic: float32 after each step.
        const expected = Math.fround((Math.fround(resized[p * 3 + c] / 255) - config.mean[c]) / config.std[c]);
        expect(ours[c * plane + p]).toBe(expected);
      }
    }
    expect(pixelTable(config)).toBe(pixelTable(config)); // built once per config
  });

  it('refuses a wrong-sized image when the model does not resize', () => {
    const fixed = parsePreprocessorConfig({ size: { height: 64, width: 64 }, do_resize: false });
    expect(() => preprocessImage({ data: pixels(32, 32, 1, 'noise'), width: 32, height: 32 }, fixed)).toThrow(expect.objectContaining({ code: 'BAD_IMAGE' }));
    expect(preprocessImage({ data: pixels(64, 64, 1, 'noise'), width: 64, height: 64 }, fixed)).toHaveLength(3 * 64 * 64);
  });
});
