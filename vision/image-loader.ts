// Turns image bytes into cached embeddings, encoding concurrent requests' images together.
// Built on DataLoader: loads issued within a short window become one encoder call. The
// decode → preprocess → encode of a batch's misses runs here (encodeInProcess) or in a
// worker thread (encode-worker.ts), which frees the thread that runs the decoder.
import DataLoader from 'dataloader';
import { IrisError } from '../src/contract/types.ts';
import { EmbeddingCache, contentHash } from './embedding-cache.ts';
import type { ImageEmbedding, VisionEncoder } from './encoder.ts';
import { decodeImage, type DecodeLimits } from './image.ts';
import { preprocessImage, type PreprocessorConfig } from './preprocess.ts';

/** A referenced embedding: call release() exactly once when the request no longer needs it. */
export interface EmbeddingLease {
  readonly key: string;
  readonly embedding: ImageEmbedding;
  readonly cached: boolean;
  /** Wall time of the decode + encode batch this image was part of (0 when cached). */
  readonly encodeMs: number;
  release(): void;
}

/** Distinct images' bytes → one embedding (or the error that image hit) each, in order. */
export type ImageBatchEncoder = (images: readonly Uint8Array[]) => Promise<(ImageEmbedding | Error)[]>;

/** What decoding, preprocessing and encoding in this thread need. */
export interface InProcessImages {
  encoder: VisionEncoder;
  preprocessor: PreprocessorConfig;
  limits: DecodeLimits;
}

/** Most images per encoder call when the caller does not say fewer. */
export const MAX_IMAGES_PER_CALL = 16;

/**
 * A second-level cache behind the local LRU (e.g. Redis shared by replicas), keyed by the
 * same content hash. It answers or gives up on its own: get() never rejects (a failure or
 * a slow answer is a miss), set() never throws and is not waited for.
 */
export interface SecondLevelCache {
  get(hashes: readonly string[]): Promise<(ImageEmbedding | undefined)[]>;
  set(hash: string, embedding: ImageEmbedding): void;
}

interface LoaderBatching {
  cache: EmbeddingCache;
  /** Asked for the local cache's misses before they are encoded; encoded images are offered to it. */
  secondLevel?: SecondLevelCache;
  /** Most images per encoder call (default MAX_IMAGES_PER_CALL). */
  maxBatchSize?: number;
  /** How long the first load of a batch waits for company, in ms (the caller's setting). */
  windowMs: number;
  /** Replaces the timer: tests call the callback by hand to cut a batch. */
  batchScheduleFn?: (callback: () => void) => void;
}

/** Images are encoded in this thread, or by `encodeImages` (e.g. a worker thread's). */
export type ImageLoaderOptions = LoaderBatching & (InProcessImages | { encodeImages: ImageBatchEncoder });

export interface ImageLoader {
  load(bytes: Uint8Array): Promise<EmbeddingLease>;
}

export function createImageLoader(options: ImageLoaderOptions): ImageLoader {
  const { maxBatchSize = MAX_IMAGES_PER_CALL, windowMs } = options;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new RangeError(`maxBatchSize must be an integer >= 1, got ${maxBatchSize}`);
  if (!Number.isFinite(windowMs) || windowMs < 0) throw new RangeError(`windowMs must be a number >= 0, got ${windowMs}`);
  // A zero window still gathers every load issued in the current turn of the event loop,
  // without setTimeout's 1 ms minimum on the single-request path.
  const batchScheduleFn = options.batchScheduleFn ??
    (windowMs === 0 ? (callback: () => void) => void setImmediate(callback) : (callback: () => void) => void setTimeout(callback, windowMs));
  // cache: false — the EmbeddingCache is the cache; DataLoader's own would hold leases forever.
  const encodeImages = 'encodeImages' in options ? options.encodeImages : encodeInProcess(options);
  const loader = new DataLoader<Uint8Array, EmbeddingLease>((keys) => loadBatch(options.cache, encodeImages, keys, options.secondLevel), {
    cache: false,
    maxBatchSize,
    batchScheduleFn,
  });
  return { load: (bytes) => loader.load(bytes) };
}

function makeLease(cache: EmbeddingCache, key: string, embedding: ImageEmbedding, cached: boolean, encodeMs: number): EmbeddingLease {
  let isReleased = false;
  return {
    key,
    embedding,
    cached,
    encodeMs,
    release() {
      if (isReleased) return; // idempotent: abort paths may release twice
      isReleased = true;
      cache.release(key);
    },
  };
}

async function loadBatch(cache: EmbeddingCache, encodeImages: ImageBatchEncoder, keys: readonly Uint8Array[], secondLevel?: SecondLevelCache): Promise<(EmbeddingLease | Error)[]> {
  const results: (EmbeddingLease | Error)[] = new Array(keys.length);
  const missing = new Map<string, number[]>(); // hash → indices of keys with those bytes
  keys.forEach((bytes, i) => {
    const key = contentHash(bytes);
    const hit = missing.has(key) ? undefined : cache.acquire(key);
    if (hit) results[i] = makeLease(cache, key, hit, true, 0);
    else missing.set(key, [...(missing.get(key) ?? []), i]);
  });
  if (secondLevel && missing.size > 0) await fillFromSecondLevel(cache, secondLevel, missing, results);
  const hashes = [...missing.keys()];
  const started = performance.now();
  const encoded = hashes.length === 0 ? [] : await encodeImages(hashes.map((key) => keys[missing.get(key)![0]])).catch((err: unknown) => hashes.map(() => toError(err)));
  const encodeMs = performance.now() - started;
  hashes.forEach((key, j) => {
    const outcome = encoded[j];
    for (const i of missing.get(key)!) results[i] = outcome instanceof Error ? outcome : makeLease(cache, key, cache.insertAndAcquire(key, outcome), false, encodeMs);
    if (secondLevel && !(outcome instanceof Error)) secondLevel.set(key, outcome);
  });
  return results;
}

/** Second-level hits become local entries and leases; they leave `missing`. */
async function fillFromSecondLevel(cache: EmbeddingCache, secondLevel: SecondLevelCache, missing: Map<string, number[]>, results: (EmbeddingLease | Error)[]): Promise<void> {
  const hashes = [...missing.keys()];
  const found = await secondLevel.get(hashes).catch(() => hashes.map(() => undefined));
  hashes.forEach((key, j) => {
    const embedding = found[j];
    if (!embedding) return;
    for (const i of missing.get(key)!) results[i] = makeLease(cache, key, cache.insertAndAcquire(key, embedding), true, 0);
    missing.delete(key);
  });
}

/**
 * The worker's encoder, except for a lone image arriving while nothing else wants this
 * thread (`isIdle`: no decoder work, and no image of ours in flight here or in the
 * worker): that one is encoded here. A worker that has slept since its last image pays
 * for the hop both ways and for cold caches; on shapes-base at one client an image took
 * 4.9 ms from arrival to ready through the worker and 2.6 ms here. The thread is idle
 * anyway, so nothing waits behind it; under load every image still goes to the worker.
 */
export function inThreadWhenIdle(worker: ImageBatchEncoder, inThread: ImageBatchEncoder, isIdle: () => boolean): ImageBatchEncoder {
  let inFlight = 0;
  return async (images) => {
    const encode = images.length === 1 && inFlight === 0 && isIdle() ? inThread : worker;
    inFlight++;
    try {
      return await encode(images);
    } finally {
      inFlight--;
    }
  };
}

/** Decode and preprocess each image (errors stay per image), then encode the good ones in one session run. */
export function encodeInProcess(images: InProcessImages): ImageBatchEncoder {
  return async (bytes) => {
    const prepared = await Promise.all(bytes.map((b) => prepare(b, images).catch((err: unknown) => toError(err))));
    const pixels = prepared.filter((p): p is Float32Array => !(p instanceof Error));
    const encoded = pixels.length === 0 ? [] : await images.encoder.encode(pixels).catch((err: unknown) => toError(err));
    let next = 0;
    return prepared.map((p) => (p instanceof Error ? p : encoded instanceof Error ? encoded : encoded[next++]));
  };
}

async function prepare(bytes: Uint8Array, images: InProcessImages): Promise<Float32Array> {
  const image = await decodeImage(bytes, images.limits);
  return preprocessImage(image, images.preprocessor);
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new IrisError('BAD_IMAGE', String(err));
}
