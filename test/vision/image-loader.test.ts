// The batching image loader: one encoder call per scheduled batch, deduplicated and cached;
// with a worker, a lone image is encoded in this thread only while nothing else wants it.
import { describe, expect, it } from 'vitest';
import { EmbeddingCache, contentHash } from '../../vision/embedding-cache.ts';
import type { VisionEncoder } from '../../vision/encoder.ts';
import { createImageLoader, inThreadWhenIdle, type ImageBatchEncoder } from '../../vision/image-loader.ts';
import { parsePreprocessorConfig } from '../../vision/preprocess.ts';
import { syntheticImage } from '../helpers.ts';

const LIMITS = { maxPixels: 1_000_000 };

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
    expect(bad).toMatchObject({ code: 'BAD_IMAGE' });
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

  it('encodes a lone image in this thread only while idle and nothing else is in flight', async () => {
    const used: string[] = [];
    const release: (() => void)[] = [];
    const encoder = (name: string, hold = false): ImageBatchEncoder => async (images) => {
      used.push(`${name}:${images.length}`);
      if (hold) await new Promise<void>((resolve) => release.push(resolve));
      return images.map(() => ({ data: new Float32Array(4), numPatches: 1, hiddenSize: 4 }));
    };
    let idle = true;
    const one = [new Uint8Array([1])];
    const quick = inThreadWhenIdle(encoder('worker'), encoder('here'), () => idle);
    await quick(one);
    await quick([new Uint8Array([1]), new Uint8Array([2])]); // a burst: the decoder will soon want this thread
    idle = false;
    await quick(one);
    expect(used).toEqual(['here:1', 'worker:2', 'worker:1']);

    used.length = 0;
    idle = true;
    const held = inThreadWhenIdle(encoder('worker', true), encoder('here', true), () => idle);
    const first = held(one); // idle: here, and held
    const second = held(one); // the first is still in flight: the worker
    await Promise.resolve();
    expect(used).toEqual(['here:1', 'worker:1']);
    release.forEach((r) => r());
    await Promise.all([first, second]);
    const third = held(one); // nothing in flight again: here
    expect(used).toEqual(['here:1', 'worker:1', 'here:1']);
    await Promise.resolve();
    release.forEach((r) => r());
    await third;
  });
});
