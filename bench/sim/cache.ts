// Embedding-cache hit share across replicas for four routings: round robin with local
// caches, round robin with local caches + a shared (Redis) second level, consistent
// hashing on the image key with local caches, and both. Caches are LRU by entry count
// (bytes / embedding size). Requests are drawn from a workload; no timing is needed, as
// hit share depends only on the order of requests and where they go.
import { createRng, createZipf, type Rng } from './rng.ts';

export type Routing = 'rr-local' | 'rr-redis' | 'hash-local' | 'hash-redis';
export const ROUTINGS: readonly Routing[] = ['rr-local', 'rr-redis', 'hash-local', 'hash-redis'];

export type Workload =
  /** Image popularity ∝ 1/rank^s over a catalog. */
  | { kind: 'zipf'; catalog: number; s: number }
  /** The trials' workload: `popularShare` of requests drawn uniformly from `pool` images, the rest never repeat. */
  | { kind: 'pool'; pool: number; popularShare: number };

export interface CacheSimOptions {
  readonly seed: number;
  readonly replicas: number;
  readonly requests: number;
  readonly workload: Workload;
  readonly routing: Routing;
  /** Entries each replica's local cache holds. */
  readonly localEntries: number;
  /** Entries the shared cache holds (ignored without Redis). */
  readonly sharedEntries: number;
  /** Share of shared-cache lookups that time out and count as misses (the trials saw 73 of ~590 on a loaded machine). */
  readonly sharedTimeoutShare?: number;
  /** Virtual nodes per replica on the hash ring. */
  readonly vnodes?: number;
}

export interface CacheSimResult {
  readonly hitShare: number;
  readonly localHits: number;
  readonly sharedHits: number;
  readonly sharedTimeouts: number;
  /** Requests of the busiest replica over the mean. */
  readonly loadSkew: number;
}

export class Lru {
  private readonly map = new Map<number, true>();
  constructor(readonly capacity: number) {}
  get(key: number): boolean {
    if (!this.map.has(key)) return false;
    this.map.delete(key);
    this.map.set(key, true);
    return true;
  }
  set(key: number): void {
    if (this.capacity <= 0) return;
    this.map.delete(key);
    this.map.set(key, true);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as number);
  }
}

/** A 32-bit integer mix (murmur3's finaliser). */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export function createRing(replicas: number, vnodes: number): (key: number) => number {
  const points: Array<[number, number]> = [];
  for (let r = 0; r < replicas; r++) for (let v = 0; v < vnodes; v++) points.push([mix32(r * 100_003 + v * 7919 + 1), r]);
  points.sort((a, b) => a[0] - b[0]);
  const hashes = Uint32Array.from(points.map((p) => p[0]));
  return (key) => {
    const h = mix32(key ^ 0x9e3779b9);
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (hashes[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    return points[lo === hashes.length ? 0 : lo][1];
  };
}

function drawer(workload: Workload, rng: Rng): () => number {
  if (workload.kind === 'zipf') return createZipf(workload.catalog, workload.s, rng);
  let fresh = workload.pool;
  return () => (rng.next() < workload.popularShare ? rng.int(workload.pool) : fresh++);
}

export function simulateCache(o: CacheSimOptions): CacheSimResult {
  const rng = createRng(o.seed);
  const draw = drawer(o.workload, rng);
  // Timeouts draw from their own stream, so the request sequence is the same whatever
  // the cache sizes: hit shares at different sizes compare like with like.
  const timeoutRng = createRng(o.seed ^ 0x5bd1e995);
  const locals = Array.from({ length: o.replicas }, () => new Lru(o.localEntries));
  const redis = o.routing.endsWith('redis');
  const shared = new Lru(redis ? o.sharedEntries : 0);
  const ring = createRing(o.replicas, o.vnodes ?? 100);
  const load = new Array<number>(o.replicas).fill(0);
  let localHits = 0;
  let sharedHits = 0;
  let sharedTimeouts = 0;
  for (let i = 0; i < o.requests; i++) {
    const image = draw();
    const r = o.routing.startsWith('hash') ? ring(image) : i % o.replicas;
    load[r]++;
    const local = locals[r];
    if (local.get(image)) {
      localHits++;
      continue;
    }
    if (redis) {
      if (timeoutRng.next() < (o.sharedTimeoutShare ?? 0)) sharedTimeouts++;
      else if (shared.get(image)) {
        sharedHits++;
        local.set(image);
        continue;
      }
      shared.set(image);
    }
    local.set(image);
  }
  const mean = o.requests / o.replicas;
  return {
    hitShare: (localHits + sharedHits) / o.requests,
    localHits,
    sharedHits,
    sharedTimeouts,
    loadSkew: Math.max(...load) / mean,
  };
}

/** Expected hit share of one unbounded global cache on the pool workload (the trials' "ideal"). */
export function idealPoolHitShare(requests: number, pool: number, popularShare: number): number {
  const popular = requests * popularShare;
  const distinct = pool * (1 - Math.pow(1 - 1 / pool, popular));
  return (popular - distinct) / requests;
}
