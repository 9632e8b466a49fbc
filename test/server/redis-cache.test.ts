// The shared (Redis) second-level embedding cache: the value format, the counting, the
// loader asking it before encoding, and a real redis-server: binary values with a TTL,
// the size cap, and every failure (stopped, killed, frozen) a miss within the timeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, RESP_TYPES } from 'redis';
import { EmbeddingCache, contentHash } from '../../vision/embedding-cache.ts';
import type { ImageEmbedding } from '../../vision/encoder.ts';
import { createImageLoader } from '../../vision/image-loader.ts';
import { createSharedEmbeddingCache, decodeEmbedding, encodeEmbedding, encoderFingerprint, sharedKeyPrefix, type ByteStore, type StoreLookup } from '../../src/engine/shared-embeddings.ts';
import { createConfig } from '../../src/config/config.ts';
import { loadConfig } from '../../src/config/settings.ts';
import { createRedisStore, type RedisStore } from '../../src/server/redis-store.ts';
import { createEngineApp, type EngineApp } from '../api/support/app.ts';
import { scenePng } from '../api/support/images.ts';
import { FIXTURES } from '../helpers.ts';
import { join } from 'node:path';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { freePort, hasRedis, startRedis, type Redis } from '../scale-out/support.ts';

const embedding = (seed: number, numPatches = 3, hiddenSize = 4): ImageEmbedding => ({
  data: Float32Array.from({ length: numPatches * hiddenSize }, (_, i) => seed + i / 7),
  numPatches,
  hiddenSize,
});

function memoryStore(): ByteStore & { map: Map<string, Uint8Array>; fail?: 'error' | 'timeout' } {
  const map = new Map<string, Uint8Array>();
  const store = {
    map,
    fail: undefined as 'error' | 'timeout' | undefined,
    async get(keys: readonly string[]): Promise<StoreLookup> {
      return store.fail ? { failure: store.fail } : { values: keys.map((k) => map.get(k)) };
    },
    set(key: string, value: Uint8Array) {
      if (store.fail) return false;
      map.set(key, value);
      return true;
    },
  };
  return store;
}

describe('shared embedding cache: format and counting', () => {
  it('round-trips an embedding through 8 header bytes and little-endian float32', () => {
    const e = embedding(1.5);
    const bytes = encodeEmbedding(e);
    expect(bytes.byteLength).toBe(8 + 4 * 12);
    expect(new DataView(bytes.buffer).getUint32(0, true)).toBe(3);
    expect(new DataView(bytes.buffer).getFloat32(8 + 4, true)).toBeCloseTo(1.5 + 1 / 7, 6);
    expect(decodeEmbedding(bytes)).toEqual(e);
    // An odd offset (Buffer slices from a socket) decodes too.
    const shifted = new Uint8Array(bytes.byteLength + 1);
    shifted.set(bytes, 1);
    expect(decodeEmbedding(shifted.subarray(1))).toEqual(e);
  });

  it('refuses bytes that are not an embedding of this shape', () => {
    const bytes = encodeEmbedding(embedding(0));
    expect(decodeEmbedding(bytes.subarray(0, bytes.byteLength - 4))).toBeUndefined();
    expect(decodeEmbedding(bytes, { numPatches: 4, hiddenSize: 3 })).toBeUndefined();
    expect(decodeEmbedding(new Uint8Array(3))).toBeUndefined();
  });

  it('keys carry the model, the encoder fingerprint and the image hash; the fingerprint follows the files and preprocessing', async () => {
    const encoder = join(FIXTURES.encoderDecoder, 'onnx/encoder_model.onnx');
    const a = await encoderFingerprint(encoder, { height: 32, width: 32, preprocessor: { mean: [0.5] } });
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(await encoderFingerprint(encoder, { width: 32, preprocessor: { mean: [0.5] }, height: 32 })).toBe(a); // key order does not matter
    expect(await encoderFingerprint(encoder, { height: 32, width: 32, preprocessor: { mean: [0.4] } })).not.toBe(a);
    const dir = await mkdtemp(join(tmpdir(), 'iris-fingerprint-'));
    try {
      const other = join(dir, 'encoder_model.onnx');
      await writeFile(other, Buffer.concat([await readFile(encoder), Buffer.from([0])])); // one more byte: another export
      expect(await encoderFingerprint(other, { height: 32, width: 32, preprocessor: { mean: [0.5] } })).not.toBe(a);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(sharedKeyPrefix('tiny', a)).toBe(`iris:emb:v1:tiny:${a}:`);
  });

  it('counts hits, misses, errors and timeouts; a failing store gives misses, never a rejection', async () => {
    const store = memoryStore();
    const cache = createSharedEmbeddingCache(store, 'p:');
    cache.set('a', embedding(1));
    expect([...store.map.keys()]).toEqual(['p:a']);
    expect(await cache.get(['a', 'b'])).toEqual([embedding(1), undefined]);
    store.fail = 'timeout';
    expect(await cache.get(['a', 'b'])).toEqual([undefined, undefined]);
    store.fail = 'error';
    expect(await cache.get(['a'])).toEqual([undefined]);
    cache.set('c', embedding(2));
    store.fail = undefined;
    store.map.set('p:d', new Uint8Array(5)); // garbage under a key: an error, served as a miss
    store.map.set('p:e', encodeEmbedding(embedding(3, 2, 2))); // another shape than this model's
    expect(await cache.get(['d', 'e'])).toEqual([undefined, undefined]);
    const throwing = createSharedEmbeddingCache({ get: () => Promise.reject(new Error('boom')), set: () => { throw new Error('boom'); } }, 'p:');
    expect(await throwing.get(['a'])).toEqual([undefined]);
    expect(() => throwing.set('a', embedding(1))).not.toThrow();
    expect(cache.stats()).toEqual({ hits: 1, misses: 1, errors: 3, timeouts: 2, writes: 1, skippedWrites: 1 });
  });

  it('the loader asks the second level for local misses, encodes only what neither has, and offers what it encoded', async () => {
    const store = memoryStore();
    const shared = createSharedEmbeddingCache(store, 'p:');
    const encoded: number[] = [];
    const encodeImages = async (images: readonly Uint8Array[]) => images.map((b) => (encoded.push(b[0]), embedding(b[0])));
    const local = new EmbeddingCache(1 << 20);
    const loader = createImageLoader({ encodeImages, cache: local, secondLevel: shared, windowMs: 0 });
    const [a, b] = [new Uint8Array([1, 1]), new Uint8Array([2, 2])];
    shared.set(contentHash(a), embedding(1)); // another replica encoded a
    const [la, lb] = await Promise.all([loader.load(a), loader.load(b)]);
    expect(encoded).toEqual([2]);
    expect(la.cached).toBe(true);
    expect(la.embedding).toEqual(embedding(1));
    expect(lb.cached).toBe(false);
    expect(store.map.has(`p:${contentHash(b)}`)).toBe(true);
    la.release();
    lb.release();
    // Now both are local: the second level is not asked again.
    const before = shared.stats();
    await Promise.all([loader.load(a), loader.load(b)]).then((ls) => ls.forEach((l) => l.release()));
    expect(shared.stats()).toEqual(before);
    // A second level that fails costs nothing but the hit.
    store.fail = 'error';
    const c = new Uint8Array([3, 3]);
    const lc = await loader.load(c);
    expect(lc.cached).toBe(false);
    expect(encoded).toEqual([2, 3]);
    lc.release();
  });
});

describe('settings', () => {
  it('are off by default and read from flags and the environment', () => {
    expect(createConfig().cache).toEqual({ resultCacheBytes: 16 * 1024 * 1024, redisUrl: undefined, redisTimeoutMs: 25, redisTtlSeconds: 86_400, redisMaxValueBytes: 16 * 1024 * 1024 });
    const config = loadConfig(['--redis-url', 'redis://127.0.0.1:6390', '--redis-timeout-ms', '40'], { IRIS_REDIS_TTL_S: '60', IRIS_REDIS_MAX_VALUE_BYTES: '1024' });
    expect(config.cache).toEqual({ resultCacheBytes: 16 * 1024 * 1024, redisUrl: 'redis://127.0.0.1:6390', redisTimeoutMs: 40, redisTtlSeconds: 60, redisMaxValueBytes: 1024 });
    expect(() => loadConfig(['--redis-url', 'http://x'], {})).toThrow(/--redis-url \(IRIS_REDIS_URL\): cache.redisUrl/);
    expect(() => loadConfig(['--redis-timeout-ms', '0'], {})).toThrow(/--redis-timeout-ms/);
  });
});

describe.skipIf(!hasRedis)('on a real redis-server', () => {
  let redis: Redis;
  let store: RedisStore;
  const warnings: string[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    store = createRedisStore({ redisUrl: redis.url, redisTimeoutMs: 50, redisTtlSeconds: 120, redisMaxValueBytes: 4096 }, { warn: (m) => warnings.push(m) });
    for (let i = 0; i < 200 && !store.isReady(); i++) await new Promise((r) => setTimeout(r, 25));
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop('SIGKILL');
  });

  async function readBack(key: string): Promise<{ value: Buffer | null; ttl: number }> {
    const client = createClient({ url: redis.url }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    await client.connect();
    try {
      return { value: (await client.get(key)) as Buffer | null, ttl: await client.ttl(key) };
    } finally {
      client.destroy();
    }
  }

  const settle = async (check: () => Promise<boolean>): Promise<void> => {
    for (let i = 0; i < 200 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('stores binary values with the TTL, skips ones over the size cap, and reads them back', async () => {
    expect(store.isReady()).toBe(true);
    const value = encodeEmbedding(embedding(-2.25, 16, 32)); // 2056 bytes
    expect(store.set('t:a', value)).toBe(true);
    expect(store.set('t:big', new Uint8Array(4097))).toBe(false);
    await settle(async () => (await readBack('t:a')).value !== null);
    const back = await readBack('t:a');
    expect(Buffer.compare(back.value!, Buffer.from(value))).toBe(0);
    expect(back.ttl).toBeGreaterThan(100);
    expect(back.ttl).toBeLessThanOrEqual(120);
    expect((await readBack('t:big')).value).toBeNull();
    const lookup = await store.get(['t:a', 't:none']);
    expect('values' in lookup && lookup.values.map((v) => v && decodeEmbedding(v))).toEqual([embedding(-2.25, 16, 32), undefined]);
  });

  it('a frozen Redis (SIGSTOP) is a timeout within the timeout; a stopped one an error at once; it comes back when Redis does', async () => {
    store.set('t:b', encodeEmbedding(embedding(4)));
    await settle(async () => (await readBack('t:b')).value !== null);
    redis.child.kill('SIGSTOP');
    try {
      const started = performance.now();
      const lookups = await Promise.all(Array.from({ length: 20 }, () => store.get(['t:b'])));
      const elapsed = performance.now() - started;
      expect(lookups.every((l) => 'failure' in l && l.failure === 'timeout')).toBe(true);
      expect(elapsed).toBeLessThan(2_000); // 50 ms each, in parallel; generous for a loaded machine
    } finally {
      redis.child.kill('SIGCONT');
    }
    const port = redis.port;
    await redis.stop('SIGKILL');
    await settle(async () => !store.isReady());
    const started = performance.now();
    expect(await store.get(['t:b'])).toEqual({ failure: 'error' });
    expect(store.set('t:c', new Uint8Array(16))).toBe(false);
    expect(performance.now() - started).toBeLessThan(50);
    // The same port again, empty (no persistence): the client reconnects on its own.
    redis = await startRedis(port);
    await settle(async () => store.isReady());
    expect(store.isReady()).toBe(true);
    expect(await store.get(['t:b'])).toEqual({ values: [undefined] });
  });
});

describe.skipIf(!hasRedis)('Redis that comes up after Iris', () => {
  it('fails lookups at once until then, and connects when it does', async () => {
    const port = await freePort();
    const store = createRedisStore({ redisUrl: `redis://127.0.0.1:${port}`, redisTimeoutMs: 25, redisTtlSeconds: 60, redisMaxValueBytes: 1024 }, { warn: () => undefined });
    let redis: Redis | undefined;
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(store.isReady()).toBe(false);
      expect(await store.get(['a'])).toEqual({ failure: 'error' });
      redis = await startRedis(port);
      for (let i = 0; i < 200 && !store.isReady(); i++) await new Promise((r) => setTimeout(r, 25));
      expect(store.isReady()).toBe(true);
    } finally {
      await store.close();
      await redis?.stop('SIGKILL');
    }
  });
});

describe.skipIf(!hasRedis)('two servers sharing one Redis (tiny-random engines)', () => {
  let redis: Redis;
  const apps: EngineApp[] = [];
  const stores: RedisStore[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.release()));
    await Promise.all(stores.map((s) => s.close()));
    await redis?.stop('SIGKILL');
  });

  async function caption(app: EngineApp, png: Buffer): Promise<{ text: string; timings: { imageCached: boolean } }> {
    const response = await app.app.yoga.fetch('http://iris.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query ($i: String!) { caption(image: { base64: $i }, options: { maxNewTokens: 4 }) { text timings { imageCached } } }', variables: { i: png.toString('base64') } }),
    });
    const body = (await response.json()) as { data: { caption: { text: string; timings: { imageCached: boolean } } }; errors?: unknown };
    expect(body.errors).toBeUndefined();
    return body.data.caption;
  }

  it('an image encoded by one replica is a Redis hit on the other, with the same answer, counted in /metrics', async () => {
    for (let i = 0; i < 2; i++) {
      const store = createRedisStore({ redisUrl: redis.url, redisTimeoutMs: 200, redisTtlSeconds: 60, redisMaxValueBytes: 1 << 20 });
      stores.push(store);
      apps.push(await createEngineApp({}, undefined, { sharedEmbeddings: store }));
    }
    for (let i = 0; i < 200 && !stores.every((s) => s.isReady()); i++) await new Promise((r) => setTimeout(r, 25));
    const png = await scenePng();
    const first = await caption(apps[0], png);
    expect(first.timings.imageCached).toBe(false);
    const client = createClient({ url: redis.url });
    await client.connect();
    for (let i = 0; i < 200 && (await client.keys('iris:emb:v1:tiny:*')).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const keys = await client.keys('iris:emb:v1:tiny:*');
    client.destroy();
    expect(keys).toEqual([expect.stringMatching(new RegExp(`^iris:emb:v1:tiny:[0-9a-f]{16}:${contentHash(png)}$`))]);
    const second = await caption(apps[1], png);
    expect(second).toEqual({ ...first, timings: { imageCached: true } });
    const metrics = await (await apps[1].app.yoga.fetch('http://iris.test/metrics')).text();
    expect(metrics).toContain('iris_embedding_cache_total{model="tiny",tier="redis",result="hit"} 1');
    expect(metrics).toContain('iris_embedding_cache_total{model="tiny",tier="local",result="miss"} 1');
    expect(metrics).toContain('iris_embedding_cache_total{model="tiny",tier="redis",result="error"} 0');
  });
});
