// The embedding cache: content keys, reference counts, eviction by bytes.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { EmbeddingCache, contentHash } from '../../vision/embedding-cache.ts';
import type { ImageEmbedding } from '../../vision/encoder.ts';

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

describe('contentHash', () => {
  it('is the sha256 of the bytes, the same for equal bytes in different buffers', () => {
    const a = Uint8Array.from([1, 2, 3, 4]);
    expect(contentHash(a)).toBe(createHash('sha256').update(a).digest('hex'));
    expect(contentHash(Uint8Array.from(a))).toBe(contentHash(a));
    expect(contentHash(Uint8Array.from([1, 2, 3, 5]))).not.toBe(contentHash(a));
  });

  it('reads a buffer once: a second call on the same buffer is the remembered hash', () => {
    const bytes = Uint8Array.from([9, 8, 7]);
    const first = contentHash(bytes);
    bytes[0] = 0; // never done to image bytes; here it shows the bytes are not read again
    expect(contentHash(bytes)).toBe(first);
  });
});
