// Image decoding (formats, EXIF, alpha, failure codes), the embedding cache and the
// batching image loader — the loader driven by a hand-cut schedule, not timers.
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { EmbeddingCache, contentHash } from '../../vision/embedding-cache.ts';
import type { ImageEmbedding, VisionEncoder } from '../../vision/encoder.ts';
import { decodeImage } from '../../vision/image.ts';
import { createImageLoader } from '../../vision/image-loader.ts';
import { parsePreprocessorConfig } from '../../vision/preprocess.ts';
import { syntheticImage } from '../helpers.ts';

const LIMITS = { maxPixels: 1_000_000 };

function solid(width: number, height: number, channels: 3 | 4, value: number[]): Sharp {
  const px = new Uint8Array(width * height * channels);
  for (let i = 0; i < px.length; i++) px[i] = value[i % channels];
  return sharp(px, { raw: { width, height, channels } });
}

describe('decodeImage', () => {
  it('reads PNG, JPEG, WebP, GIF, TIFF and AVIF', async () => {
    const base = () => solid(40, 30, 3, [200, 30, 30]);
    const encoded = {
      png: await base().png().toBuffer(),
      jpeg: await base().jpeg({ quality: 90 }).toBuffer(),
      webp: await base().webp({ lossless: true }).toBuffer(),
      gif: await base().gif().toBuffer(),
      tiff: await base().tiff().toBuffer(),
      avif: await base().avif({ lossless: true }).toBuffer(),
    };
    for (const [format, bytes] of Object.entries(encoded)) {
      const img = await decodeImage(new Uint8Array(bytes), LIMITS);
      expect([format, img.width, img.height, img.data.length]).toEqual([format, 40, 30, 40 * 30 * 3]);
      expect(Math.abs(img.data[0] - 200)).toBeLessThan(16);
    }
  });

  it('applies EXIF orientation', async () => {
    const bytes = await solid(40, 20, 3, [10, 200, 10]).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const img = await decodeImage(new Uint8Array(bytes), LIMITS);
    expect([img.width, img.height]).toEqual([20, 40]);
  });

  it('flattens transparency onto white and keeps opaque pixels exact', async () => {
    const clear = await decodeImage(new Uint8Array(await solid(8, 8, 4, [0, 0, 0, 0]).png().toBuffer()), LIMITS);
    expect(Array.from(clear.data.subarray(0, 3))).toEqual([255, 255, 255]);
    const opaque = await decodeImage(new Uint8Array(await solid(8, 8, 4, [12, 34, 56, 255]).png().toBuffer()), LIMITS);
    expect(Array.from(opaque.data.subarray(0, 3))).toEqual([12, 34, 56]);
  });

  it('names each failure with a stable code', async () => {
    const png = await syntheticImage(64, 64, 1);
    await expect(decodeImage(new Uint8Array(0), LIMITS)).rejects.toMatchObject({ code: 'BAD_IMAGE' });
    await expect(decodeImage(new TextEncoder().encode('not an image at all'), LIMITS)).rejects.toMatchObject({ code: 'UNSUPPORTED_IMAGE_FORMAT' });
    await expect(decodeImage(png.subarray(0, 120), LIMITS)).rejects.toMatchObject({ code: 'BAD_IMAGE' });
    await expect(decodeImage(png, { maxPixels: 64 * 64 - 1 })).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
    const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    await expect(decodeImage(svg, LIMITS)).rejects.toMatchObject({ code: 'UNSUPPORTED_IMAGE_FORMAT' });
  });

  it('rejects a decompression bomb from its header, before decoding', async () => {
    const bomb = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#fff' } }).png({ compressionLevel: 9 }).toBuffer();
    expect(bomb.length).toBeLessThan(200_000); // tiny file, 16 Mpx
    await expect(decodeImage(new Uint8Array(bomb), { maxPixels: 1_000_000 })).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
  });
});

function embedding(bytes: number): ImageEmbedding {
  return { data: new Float32Array(bytes / 4), numPatches: 1, hiddenSize: bytes / 4 };
}

describe('EmbeddingCache', () => {
  it('evicts least recently used unreferenced entries, never referenced ones', () => {
    const cache = new EmbeddingCache(3 * 400);
    for (const key of ['a', 'b', 'c']) cache.insertAndAcquire(key, embedding(400));
    cache.release('a');
    cache.release('b');
    cache.acquire('a'); // a is now recent and referenced
    cache.release('a');
    cache.insertAndAcquire('d', embedding(400)); // over budget: b goes (LRU, unreferenced)
    expect(['a', 'b', 'c', 'd'].map((k) => cache.has(k))).toEqual([true, false, true, true]);
    cache.insertAndAcquire('e', embedding(400)); // a goes; c and d are still referenced
    expect(['a', 'c', 'd', 'e'].map((k) => cache.has(k))).toEqual([false, true, true, true]);
    expect(cache.stats().bytes).toBe(1200);
    expect(() => cache.release('zzz')).toThrow();
  });

  it('overshoots its budget rather than drop an in-use embedding, then shrinks on release', () => {
    const cache = new EmbeddingCache(100);
    cache.insertAndAcquire('big', embedding(400));
    expect(cache.has('big')).toBe(true);
    cache.release('big');
    expect(cache.has('big')).toBe(false);
  });
});

describe('image loader', () => {
  const preprocessor = parsePreprocessorConfig({ size: { height: 8, width: 8 } });

  function fakeEncoder(calls: number[]): VisionEncoder {
    return {
      encode: async (images: readonly Float32Array[]) => {
        calls.push(images.length);
        return images.map((img) => ({ data: img.slice(0, 4), numPatches: 1, hiddenSize: 4 }));
      },
    } as unknown as VisionEncoder;
  }

  it('encodes the images of one scheduled batch in one call, deduplicated and cached', async () => {
    const calls: number[] = [];
    const cuts: (() => void)[] = [];
    const cache = new EmbeddingCache(1 << 20);
    const loader = createImageLoader({ encoder: fakeEncoder(calls), preprocessor, cache, limits: LIMITS, windowMs: 0, batchScheduleFn: (cb) => cuts.push(cb) });
    const [a, b] = await Promise.all([syntheticImage(32, 32, 1), syntheticImage(32, 32, 2)]);
    const pending = Promise.all([loader.load(a), loader.load(b), loader.load(a), loader.load(new Uint8Array([1, 2, 3]))].map((p) => p.catch((e: Error) => e)));
    expect(cuts).toHaveLength(1);
    cuts[0]();
    const [la, lb, la2, bad] = await pending;
    expect(calls).toEqual([2]); // one call, a encoded once
    expect(bad).toMatchObject({ code: 'UNSUPPORTED_IMAGE_FORMAT' });
    if (la instanceof Error || lb instanceof Error || la2 instanceof Error) throw new Error('load failed');
    expect(la.key).toBe(contentHash(a));
    expect(cache.refCount(la.key)).toBe(2);
    const again = loader.load(a);
    cuts[1]();
    expect((await again).cached).toBe(true);
    expect(calls).toEqual([2]);
    for (const lease of [la, lb, la2, await again]) lease.release();
    expect(cache.refCount(la.key)).toBe(0);
  });

  it('validates its options once, with messages that restate the contract', () => {
    const cache = new EmbeddingCache(0);
    expect(() => createImageLoader({ encoder: fakeEncoder([]), preprocessor, cache, limits: LIMITS, windowMs: 0, maxBatchSize: 0 })).toThrow(/maxBatchSize must be an integer >= 1/);
  });
});
