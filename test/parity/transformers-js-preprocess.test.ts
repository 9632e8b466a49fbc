// Iris's image path (decodeImage → preprocessImage, what the server, the CLI and the image
// worker all run) against transformers.js's processor on the same bytes, across sizes,
// aspect ratios, formats, greyscale, alpha, EXIF orientation and the three resample modes:
// pixel_values identical to the bit.
//
// One deliberate difference: where an image has transparency, Iris composites it onto
// white (the background the shapes-world trainer uses) and transformers.js drops the
// alpha channel; there Iris equals transformers.js given the image flattened onto white.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AutoProcessor, RawImage, env } from '@huggingface/transformers';
import sharp, { type Sharp } from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../vision/image.ts';
import { parsePreprocessorConfig, preprocessImage, type PreprocessorConfig } from '../../vision/preprocess.ts';
import { FIXTURES, SHIPPED_MODEL, isShippedModelPresent } from '../helpers.ts';

env.allowRemoteModels = false;
env.useFSCache = false;

type Processor = Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>;

const LIMITS = { maxPixels: 4_000_000 };

/** Smooth shapes plus a little noise: what photos and the shapes world both have. */
function raw(width: number, height: number, channels: 1 | 3 | 4, seed: number, alpha?: (x: number, y: number) => number): Sharp {
  const px = new Uint8Array(width * height * channels);
  let s = seed;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * channels;
      for (let c = 0; c < Math.min(channels, 3); c++) {
        s = (s * 1103515245 + 12345) & 0x7fffffff;
        const inShape = (x - width * 0.4) ** 2 + (y - height * 0.5) ** 2 < (Math.min(width, height) * 0.3) ** 2;
        px[i + c] = Math.max(0, Math.min(255, (inShape ? 40 + 70 * c : 200 - 50 * c) + ((x * 7 + y * 3 * (c + 1)) % 40) + (s >> 27)));
      }
      if (channels === 4) px[i + 3] = alpha ? alpha(x, y) : 255;
    }
  }
  return sharp(px, { raw: { width, height, channels } });
}

const SIZES = [[128, 128], [64, 64], [50, 77], [77, 50], [1, 1], [3, 200], [200, 3], [63, 65], [640, 480], [31, 1000], [256, 256], [333, 222]] as const;

async function cases(): Promise<[string, Uint8Array][]> {
  const out: [string, Uint8Array][] = [];
  const add = async (name: string, image: Promise<Buffer>): Promise<void> => void out.push([name, new Uint8Array(await image)]);
  for (const [w, h] of SIZES) {
    const seed = w * 131 + h;
    await add(`png ${w}x${h}`, raw(w, h, 3, seed).png().toBuffer());
    await add(`jpeg ${w}x${h}`, raw(w, h, 3, seed).jpeg({ quality: 85 }).toBuffer());
    await add(`webp ${w}x${h}`, raw(w, h, 3, seed).webp({ quality: 80 }).toBuffer());
  }
  for (const [w, h] of [[90, 60], [64, 64], [17, 130]] as const) {
    const seed = w + h;
    await add(`webp lossless ${w}x${h}`, raw(w, h, 3, seed).webp({ lossless: true }).toBuffer());
    await add(`grey png ${w}x${h}`, raw(w, h, 1, seed).png().toBuffer());
    await add(`grey jpeg ${w}x${h}`, raw(w, h, 1, seed).jpeg().toBuffer());
    await add(`opaque rgba png ${w}x${h}`, raw(w, h, 4, seed).png().toBuffer());
    await add(`gif ${w}x${h}`, raw(w, h, 3, seed).gif().toBuffer());
    await add(`16-bit png ${w}x${h}`, raw(w, h, 3, seed).toColourspace('rgb16').png().toBuffer());
    for (const orientation of [2, 3, 5, 6, 8]) await add(`jpeg exif ${orientation} ${w}x${h}`, raw(w, h, 3, seed).jpeg().withMetadata({ orientation }).toBuffer());
  }
  return out;
}

async function reference(processor: Processor, bytes: Uint8Array): Promise<Float32Array> {
  const { pixel_values } = await processor(await RawImage.fromBlob(new Blob([bytes as Uint8Array<ArrayBuffer>])));
  return pixel_values.data as Float32Array;
}

async function ours(bytes: Uint8Array, config: PreprocessorConfig): Promise<Float32Array> {
  return preprocessImage(await decodeImage(bytes, LIMITS), config);
}

const same = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const folders = { tinyRandom: FIXTURES.encoderDecoder, ...(isShippedModelPresent ? { shipped: SHIPPED_MODEL } : {}) };

for (const [name, dir] of Object.entries(folders)) {
  describe(`image path vs transformers.js's processor: ${name}`, () => {
    let rawConfig: Record<string, unknown>;
    let all: [string, Uint8Array][];
    beforeAll(async () => {
      rawConfig = JSON.parse(await readFile(join(dir, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;
      all = await cases();
    });

    it('gives bit-identical pixel_values across sizes, formats, greyscale, opaque alpha and EXIF orientation', async () => {
      const processor = await AutoProcessor.from_pretrained(dir, { local_files_only: true });
      const config = parsePreprocessorConfig(rawConfig);
      const differing: string[] = [];
      for (const [label, bytes] of all) if (!same(await ours(bytes, config), await reference(processor, bytes))) differing.push(label);
      expect(all.length).toBeGreaterThan(60);
      expect(differing).toEqual([]);
    });

    it('composites transparency onto white where transformers.js drops alpha, and is otherwise identical', async () => {
      const processor = await AutoProcessor.from_pretrained(dir, { local_files_only: true });
      const config = parsePreprocessorConfig(rawConfig);
      for (const [w, h] of [[100, 70], [64, 64], [40, 150]] as const) {
        const translucent = await raw4(w, h);
        const flattened = new Uint8Array(await sharp(translucent).flatten({ background: '#ffffff' }).png().toBuffer());
        expect(same(await ours(translucent, config), await reference(processor, flattened))).toBe(true);
        expect(same(await ours(translucent, config), await reference(processor, translucent))).toBe(false);
      }
    });
  });
}

async function raw4(w: number, h: number): Promise<Uint8Array> {
  return new Uint8Array(await raw(w, h, 4, w * h, (x, y) => ((x + y) % 3 === 0 ? 0 : 120 + ((x * y) % 136))).png().toBuffer());
}

describe('image path vs transformers.js: resample modes', () => {
  it('nearest and bicubic are bit-identical too', async () => {
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const base = JSON.parse(await readFile(join(FIXTURES.encoderDecoder, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;
    const images = (await cases()).filter(([label]) => label.startsWith('png') || label.startsWith('jpeg exif 6'));
    const tmp = await mkdtemp(join(tmpdir(), 'iris-resample-'));
    try {
      for (const resample of [0, 3]) {
        for (const size of [{ height: 64, width: 64 }, { height: 224, width: 160 }]) {
          const rawConfig = { ...base, resample, size };
          await writeFile(join(tmp, 'preprocessor_config.json'), JSON.stringify(rawConfig));
          const processor = await AutoProcessor.from_pretrained(tmp, { local_files_only: true });
          const config = parsePreprocessorConfig(rawConfig);
          const differing: string[] = [];
          for (const [label, bytes] of images) if (!same(await ours(bytes, config), await reference(processor, bytes))) differing.push(label);
          expect([resample, size, differing]).toEqual([resample, size, []]);
        }
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
