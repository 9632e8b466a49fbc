// Whole results of deterministic requests, so a repeated one is answered without running
// the model: a local LRU bounded in bytes, then (with a store, i.e. Redis) the tier
// shared by replicas. A request is deterministic when it decodes greedily, or samples
// with an explicit seed; requests for attention maps are never cached (the maps are
// large and cost little to ask for again compared with what they weigh).
//
//   key   = iris:res:v1:<model id>:<fingerprint>:<sha256 of the request>
//   value = JSON { result, deltas } (UTF-8), non-finite numbers spelled out
//
// The fingerprint hashes every file of the model folder (graphs, tokenizer, configs,
// draft model) and the engine settings that change outputs; the request hash covers the
// task, question/prompt, the resolved options (all of them: one that changes nothing
// still only costs a miss) and the SHA-256 of the image bytes. The deltas are kept so a
// streaming request served from the cache streams the same pieces a fresh run did.
// Every failure of the store is a miss, counted, never an error.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { GenerationDelta, GenerationRequest, GenerationResult } from '../contract/types.ts';
import type { ResolvedOptions } from '../../text/sampling/options.ts';
import { stableJson, type ByteStore, type SharedCacheStats } from './shared-embeddings.ts';
import type { SingleFlightStats } from './single-flight.ts';

export const RESULT_KEY_VERSION = 'v1';

/** A result as it was produced, with the pieces it was streamed in. */
export interface CachedResult {
  readonly result: GenerationResult;
  readonly deltas: readonly GenerationDelta[];
}

export interface LocalResultCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly entries: number;
  readonly bytes: number;
}

/** Lookups per tier since start: identical requests in flight, the local LRU, and the shared store when there is one. */
export interface ResultCacheStats {
  /** Requests that joined an identical one in flight (hits) or started one (misses, then looked up in the local tier). */
  readonly inflight?: SingleFlightStats;
  readonly local: LocalResultCacheStats;
  readonly shared?: SharedCacheStats;
}

export interface ResultCacheOptions {
  /** Bytes of encoded results kept in this process; 0: none (the shared tier, if any, still answers). */
  readonly maxBytes: number;
  readonly store?: ByteStore;
  /** Key prefix (resultKeyPrefix): the model and its fingerprint. */
  readonly prefix: string;
}

export function resultKeyPrefix(modelId: string, fingerprint: string): string {
  return `iris:res:${RESULT_KEY_VERSION}:${modelId}:${fingerprint}:`;
}

/** The request's hash when its output is fully determined; undefined when it must run (sampling without a seed, attention maps). */
export function resultKeyOf(request: GenerationRequest, options: ResolvedOptions): string | undefined {
  if (options.attention) return undefined;
  if (options.isSampling && (request.options?.seed === undefined || request.options.seed === null)) return undefined;
  const image = createHash('sha256').update(request.image).digest('hex');
  // Greedy decoding ignores the seed (and the warpers' values): a random one must not split the key.
  const resolved = options.isSampling ? options : { ...options, seed: 0 };
  const described = stableJson({ task: request.task, question: request.question ?? null, prompt: request.prompt ?? null, options: resolved, image });
  return createHash('sha256').update(described).digest('hex');
}

/** A short hash of everything in the model folder (but READMEs) and of `parts` (settings that change outputs). */
export async function modelFingerprint(dir: string, parts: Readonly<Record<string, unknown>>): Promise<string> {
  const hash = createHash('sha256');
  const files = (await listFiles(dir)).filter((f) => !f.endsWith('.md')).sort();
  for (const file of files) {
    hash.update(`${relative(dir, file)}\0`);
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  }
  hash.update(stableJson(parts));
  return hash.digest('hex').slice(0, 16);
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(entries.map(async (e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return listFiles(path);
    return e.isFile() || e.isSymbolicLink() ? [path] : [];
  }));
  return nested.flat();
}

export function encodeCachedResult(cached: CachedResult): Uint8Array {
  const json = JSON.stringify({ result: cached.result, deltas: cached.deltas }, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? { $num: String(v) } : v));
  return Buffer.from(json, 'utf8');
}

/** The result in `bytes`, or undefined when they are not one. */
export function decodeCachedResult(bytes: Uint8Array): CachedResult | undefined {
  try {
    const value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), (_, v: unknown) => {
      if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { $num?: unknown }).$num === 'string') return Number((v as { $num: string }).$num);
      return v;
    }) as Partial<CachedResult> | null;
    if (!value || typeof value !== 'object' || !value.result || !Array.isArray(value.deltas) || typeof value.result.text !== 'string' || !Array.isArray(value.result.tokens)) return undefined;
    return value as CachedResult;
  } catch {
    return undefined;
  }
}

export class ResultCache {
  private readonly entries = new Map<string, Uint8Array>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private shared = { hits: 0, misses: 0, errors: 0, timeouts: 0, writes: 0, skippedWrites: 0 };

  constructor(private readonly options: ResultCacheOptions) {}

  /** Local first, then the shared store; never rejects. The result is a fresh copy each time. */
  async get(key: string): Promise<CachedResult | undefined> {
    const local = this.entries.get(key);
    if (local) {
      this.entries.delete(key); // most recently used last
      this.entries.set(key, local);
      const cached = decodeCachedResult(local);
      if (cached) {
        this.hits++;
        return cached;
      }
    }
    this.misses++;
    const { store } = this.options;
    if (!store) return undefined;
    const lookup = await store.get([this.options.prefix + key]).catch(() => ({ failure: 'error' as const }));
    if ('failure' in lookup) {
      if (lookup.failure === 'timeout') this.shared.timeouts++;
      else this.shared.errors++;
      return undefined;
    }
    const bytes = lookup.values[0];
    const cached = bytes ? decodeCachedResult(bytes) : undefined;
    if (bytes && !cached) this.shared.errors++; // present but not a result
    else if (cached) this.shared.hits++;
    else this.shared.misses++;
    if (cached && bytes) this.keepLocally(key, Uint8Array.from(bytes));
    return cached;
  }

  /** Keeps a finished result in both tiers (the shared one without waiting). */
  set(key: string, cached: CachedResult): void {
    const bytes = encodeCachedResult(cached);
    this.keepLocally(key, bytes);
    const { store } = this.options;
    if (!store) return;
    let sent = false;
    try {
      sent = store.set(this.options.prefix + key, bytes);
    } catch {
      sent = false;
    }
    if (sent) this.shared.writes++;
    else this.shared.skippedWrites++;
  }

  stats(): ResultCacheStats {
    return {
      local: { hits: this.hits, misses: this.misses, entries: this.entries.size, bytes: this.bytes },
      shared: this.options.store ? { ...this.shared } : undefined,
    };
  }

  private keepLocally(key: string, bytes: Uint8Array): void {
    const { maxBytes } = this.options;
    const previous = this.entries.get(key);
    if (previous) {
      this.entries.delete(key);
      this.bytes -= previous.byteLength;
    }
    if (bytes.byteLength > maxBytes) return;
    this.entries.set(key, bytes);
    this.bytes += bytes.byteLength;
    for (const [k, v] of this.entries) {
      if (this.bytes <= maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.byteLength;
    }
  }
}
