// Image-prefix caching for joint-embedding models: a prompt starts with the image's tokens,
// so the keys and values of that prefix are the same for every question about the same
// image. Kept per image content hash, least recently used first out, within a capacity in
// cached tokens; a prefill whose image is cached feeds only the tokens after the prefix.
// (What vLLM calls automatic prefix caching, at whole-image granularity.)
import type { RowKv } from '../../text/kv-cache.ts';

export interface PrefixCacheStats {
  readonly hits: number;
  readonly misses: number;
  /** Tokens held now. */
  readonly cachedTokens: number;
  readonly capacityTokens: number;
}

export class PrefixCache {
  private readonly entries = new Map<string, RowKv>(); // insertion order = recency
  private tokens = 0;
  private hits = 0;
  private misses = 0;

  constructor(readonly capacityTokens: number) {
    if (!Number.isInteger(capacityTokens) || capacityTokens < 0) throw new RangeError(`capacityTokens must be an integer >= 0, got ${capacityTokens}`);
  }

  /** The image's prefix, if cached (counted as a hit or a miss, and made most recent). */
  lookup(key: string): RowKv | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  /** Keep an image's prefix, evicting the least recently used to make room; a prefix larger than the whole capacity is not kept. */
  store(key: string, prefix: RowKv): void {
    if (this.entries.has(key) || prefix.length > this.capacityTokens) return;
    while (this.tokens + prefix.length > this.capacityTokens) {
      const [oldest, evicted] = this.entries.entries().next().value as [string, RowKv];
      this.entries.delete(oldest);
      this.tokens -= evicted.length;
    }
    this.entries.set(key, prefix);
    this.tokens += prefix.length;
  }

  stats(): PrefixCacheStats {
    return { hits: this.hits, misses: this.misses, cachedTokens: this.tokens, capacityTokens: this.capacityTokens };
  }
}
