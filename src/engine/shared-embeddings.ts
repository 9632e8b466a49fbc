// The embedding cache shared by replicas: a second level behind each engine's local LRU
// (vision/image-loader.ts asks it for the local misses before encoding, and offers it
// what it encoded). The store underneath (Redis, src/server/redis-store.ts) only moves
// bytes; this file owns the keys and the value format:
//
//   key   = iris:emb:v1:<model id>:<fingerprint>:<sha256 of the image bytes>
//   value = numPatches (u32 LE) · hiddenSize (u32 LE) · numPatches × hiddenSize float32 LE
//
// The fingerprint hashes the encoder's ONNX file, its input size and the preprocessor
// config, so replicas running another export or preprocessing never read each other's
// embeddings. Every failure of the store is a miss, counted, never an error.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { endianness } from 'node:os';
import type { ImageEmbedding } from '../../vision/encoder.ts';
import type { SecondLevelCache } from '../../vision/image-loader.ts';

/** How a store lookup went: the values (undefined: absent), or why there are none. */
export type StoreLookup = { readonly values: readonly (Uint8Array | undefined)[] } | { readonly failure: 'error' | 'timeout' };

/** Bytes by key, with expiry. Never rejects, never throws: a failure is reported, not raised. */
export interface ByteStore {
  get(keys: readonly string[]): Promise<StoreLookup>;
  /** Fire and forget; returns false when the value was not sent (too large, store down). */
  set(key: string, value: Uint8Array): boolean;
}

/** Lookups per outcome (one per image), and writes sent or skipped, since start. */
export interface SharedCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly writes: number;
  readonly skippedWrites: number;
}

export interface SharedEmbeddingCache extends SecondLevelCache {
  readonly prefix: string;
  stats(): SharedCacheStats;
}

const HEADER_BYTES = 8;
/** Float32Array is in the platform's byte order; the value format is little-endian. */
const IS_LE = endianness() === 'LE';
export const KEY_VERSION = 'v1';

export function encodeEmbedding(embedding: ImageEmbedding): Uint8Array {
  const { data, numPatches, hiddenSize } = embedding;
  const out = new Uint8Array(HEADER_BYTES + data.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, numPatches, true);
  view.setUint32(4, hiddenSize, true);
  if (IS_LE) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), HEADER_BYTES);
  else for (let i = 0; i < data.length; i++) view.setFloat32(HEADER_BYTES + 4 * i, data[i], true);
  return out;
}

/** The embedding in `bytes`, or undefined when they are not one (wrong length or shape). */
export function decodeEmbedding(bytes: Uint8Array, expect?: { numPatches: number; hiddenSize: number }): ImageEmbedding | undefined {
  if (bytes.byteLength < HEADER_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const numPatches = view.getUint32(0, true);
  const hiddenSize = view.getUint32(4, true);
  if (bytes.byteLength !== HEADER_BYTES + 4 * numPatches * hiddenSize) return undefined;
  if (expect && (expect.numPatches !== numPatches || expect.hiddenSize !== hiddenSize)) return undefined;
  const data = new Float32Array(numPatches * hiddenSize);
  if (IS_LE) new Uint8Array(data.buffer).set(bytes.subarray(HEADER_BYTES));
  else for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(HEADER_BYTES + 4 * i, true);
  return { data, numPatches, hiddenSize };
}

/** A short hash of what makes an embedding: the encoder file's bytes, its input size, the preprocessing. */
export async function encoderFingerprint(encoderPath: string, parts: Readonly<Record<string, unknown>>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(encoderPath)) hash.update(chunk as Buffer);
  hash.update(stableJson(parts));
  return hash.digest('hex').slice(0, 16);
}

/** JSON with object keys sorted, undefined members left out: equal values, equal text. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function sharedKeyPrefix(modelId: string, fingerprint: string): string {
  return `iris:emb:${KEY_VERSION}:${modelId}:${fingerprint}:`;
}

export function createSharedEmbeddingCache(store: ByteStore, prefix: string): SharedEmbeddingCache {
  let hits = 0;
  let misses = 0;
  let errors = 0;
  let timeouts = 0;
  let writes = 0;
  let skippedWrites = 0;
  // The first embedding seen fixes the shape every later value must have.
  let shape: { numPatches: number; hiddenSize: number } | undefined;
  return {
    prefix,
    async get(hashes) {
      const lookup = await store.get(hashes.map((h) => prefix + h)).catch(() => ({ failure: 'error' as const }));
      if ('failure' in lookup) {
        if (lookup.failure === 'timeout') timeouts += hashes.length;
        else errors += hashes.length;
        return hashes.map(() => undefined);
      }
      return hashes.map((_, i) => {
        const bytes = lookup.values[i];
        const embedding = bytes ? decodeEmbedding(bytes, shape) : undefined;
        if (bytes && !embedding) errors++; // present but not an embedding of this model
        else if (embedding) hits++;
        else misses++;
        return embedding;
      });
    },
    set(hash, embedding) {
      shape ??= { numPatches: embedding.numPatches, hiddenSize: embedding.hiddenSize };
      let sent = false;
      try {
        sent = store.set(prefix + hash, encodeEmbedding(embedding));
      } catch {
        sent = false;
      }
      if (sent) writes++;
      else skippedWrites++;
    },
    stats: () => ({ hits, misses, errors, timeouts, writes, skippedWrites }),
  };
}
