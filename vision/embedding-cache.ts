// Image embeddings keyed by content hash: a byte-bounded LRU whose in-use entries
// (reference count > 0) are never evicted, so a running request keeps its features.
import { createHash } from 'node:crypto';
import type { ImageEmbedding } from './encoder.ts';

const hashes = new WeakMap<Uint8Array, string>();

/**
 * The sha256 of an image's bytes (hex), the key embeddings are cached and routed by.
 * Computed once per buffer: the server's intake hashes a request's image as it takes it
 * (the routing key), and the image loader gets the same buffer, so it reads the bytes
 * only once. Image bytes are never modified once read.
 */
export function contentHash(bytes: Uint8Array): string {
  let hash = hashes.get(bytes);
  if (hash === undefined) {
    hash = createHash('sha256').update(bytes).digest('hex');
    hashes.set(bytes, hash);
  }
  return hash;
}

interface Entry {
  embedding: ImageEmbedding;
  bytes: number;
  refs: number;
}

export interface EmbeddingCacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  evictions: number;
}

export class EmbeddingCache {
  // Map iteration order is insertion order: re-inserting on use makes it an LRU list.
  private readonly entries = new Map<string, Entry>();
  private totalBytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(readonly maxBytes: number) {
    if (!Number.isFinite(maxBytes) || maxBytes < 0) throw new RangeError(`maxBytes must be a finite number >= 0, got ${maxBytes}`);
  }

  /** Take a reference to a cached embedding (undefined on a miss). Pair with release(). */
  acquire(key: string): ImageEmbedding | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    entry.refs++;
    this.touch(key, entry);
    return entry.embedding;
  }

  /** Insert (or re-reference) an embedding and take one reference to it. */
  insertAndAcquire(key: string, embedding: ImageEmbedding): ImageEmbedding {
    const existing = this.entries.get(key);
    if (existing) {
      existing.refs++;
      this.touch(key, existing);
      return existing.embedding;
    }
    const bytes = embedding.data.byteLength;
    this.entries.set(key, { embedding, bytes, refs: 1 });
    this.totalBytes += bytes;
    this.evictUnused();
    return embedding;
  }

  release(key: string): void {
    const entry = this.entries.get(key);
    if (!entry || entry.refs === 0) throw new Error(`release of unreferenced embedding ${key.slice(0, 12)}`);
    entry.refs--;
    if (entry.refs === 0) this.evictUnused();
  }

  refCount(key: string): number {
    return this.entries.get(key)?.refs ?? 0;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  stats(): EmbeddingCacheStats {
    return { entries: this.entries.size, bytes: this.totalBytes, hits: this.hits, misses: this.misses, evictions: this.evictions };
  }

  private touch(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
  }

  /** Lazy eviction: oldest unreferenced entries go first; referenced ones may overshoot the budget. */
  private evictUnused(): void {
    if (this.totalBytes <= this.maxBytes) return;
    for (const [key, entry] of this.entries) {
      if (this.totalBytes <= this.maxBytes) break;
      if (entry.refs > 0) continue;
      this.entries.delete(key);
      this.totalBytes -= entry.bytes;
      this.evictions++;
    }
  }
}
