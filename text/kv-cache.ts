// Owner of the decoder's past key/values for a batch of rows, for both cache namings:
//  - 'self-only' (GPT-2 family): past_key_values.{i}.key/value; cross-attention K/V are
//    recomputed inside the graph every step.
//  - 'encoder-decoder' (TrOCR, BART, ...): past_key_values.{i}.decoder.* plus
//    past_key_values.{i}.encoder.*; the cross K/V come out of the first step and are
//    passed back unchanged afterwards (use_cache_branch = true), never recomputed.
import * as ort from 'onnxruntime-node';
import type { FloatData, KvPool } from './kv-pool.ts';

export type CacheNaming = 'self-only' | 'encoder-decoder';

export interface CacheLayout {
  naming: CacheNaming;
  numLayers: number;
  numHeads: number;
  headDim: number;
  /** Element type of the past tensors (fp16 exports carry float16 pasts). */
  dtype: 'float32' | 'float16';
}

export type KV = { key: ort.Tensor; value: ort.Tensor }; // each [batch, heads, len, headDim]

const SELF_ONLY = /^past_key_values\.(\d+)\.(key|value)$/;
const ENC_DEC = /^past_key_values\.(\d+)\.decoder\.(key|value)$/;
/** The cross-attention K/V an encoder-decoder graph passes back (present.{i}.encoder.*). */
export const CROSS_PRESENT = /^present\.\d+\.encoder\.(key|value)$/;

/** Read the naming and the static head shape from the session's declared inputs. */
export function detectCacheLayout(inputs: readonly { name: string; shape?: readonly (number | string)[]; type?: string }[]): CacheLayout {
  const selfOnly = inputs.filter((i) => SELF_ONLY.test(i.name));
  const encDec = inputs.filter((i) => ENC_DEC.test(i.name));
  const pasts = encDec.length > 0 ? encDec : selfOnly;
  if (pasts.length === 0) throw new Error('decoder declares no past_key_values inputs');
  const shape = pasts[0].shape ?? [];
  const [numHeads, headDim] = [shape[1], shape[3]];
  if (typeof numHeads !== 'number' || typeof headDim !== 'number') {
    throw new Error(`past_key_values must have static heads and head_dim, got [${shape.join(', ')}]`);
  }
  const dtype = pasts[0].type === 'float16' ? 'float16' : 'float32';
  return Object.freeze({ naming: encDec.length > 0 ? 'encoder-decoder' : 'self-only', numLayers: pasts.length / 2, numHeads, headDim, dtype });
}

export class KvCache {
  private isReleased = false;

  private constructor(
    readonly layout: CacheLayout,
    readonly batchSize: number,
    readonly pastLength: number,
    private readonly self: readonly KV[],
    /** null until the first step of an encoder-decoder model has produced them. */
    private readonly cross: readonly KV[] | null,
    /** Where caches built from this one take their arrays (appendColumns, assemble, gatherColumns). */
    private readonly pool?: KvPool,
    /** The self-attention arrays came from `pool` and go back to it on release(). */
    private readonly isPooled = false,
  ) {}

  static empty(layout: CacheLayout, batchSize: number, pool?: KvPool): KvCache {
    const self = Array.from({ length: layout.numLayers }, () => emptyKv(layout, batchSize));
    return new KvCache(layout, batchSize, 0, self, null, pool);
  }

  /**
   * Done with this cache: its pooled arrays may be handed to the next one. The owner of a
   * batch calls it when a step has built the batch's next cache; a released cache can no
   * longer feed a step. Caches whose arrays onnxruntime made are left to the collector.
   */
  release(): void {
    if (this.isReleased) return;
    this.isReleased = true;
    if (!this.isPooled || !this.pool) return;
    for (const kv of this.self) {
      this.pool.give(kv.key.data as FloatData);
      this.pool.give(kv.value.data as FloatData);
    }
  }

  private live(): void {
    if (this.isReleased) throw new Error('KvCache used after release()');
  }

  get hasCrossAttentionCache(): boolean {
    return this.cross !== null;
  }

  /** Per layer, the cross-attention K/V (null until computed, or for 'self-only' models). */
  get crossKv(): readonly KV[] | null {
    return this.cross;
  }

  /** Does the next step have a past (a merged graph's use_cache_branch)? Encoder-decoder: once the cross K/V are computed; self-only: once any position is. */
  get isCached(): boolean {
    return this.layout.naming === 'encoder-decoder' ? this.cross !== null : this.pastLength > 0;
  }

  /** The past inputs of the next step, by the session's input names (plus use_cache_branch). */
  feeds(): Record<string, ort.Tensor> {
    this.live();
    const feeds: Record<string, ort.Tensor> = {};
    const isEncDec = this.layout.naming === 'encoder-decoder';
    this.self.forEach((kv, i) => {
      const prefix = isEncDec ? `past_key_values.${i}.decoder` : `past_key_values.${i}`;
      feeds[`${prefix}.key`] = kv.key;
      feeds[`${prefix}.value`] = kv.value;
    });
    if (isEncDec) {
      for (let i = 0; i < this.layout.numLayers; i++) {
        const kv = this.cross?.[i] ?? emptyKv(this.layout, this.batchSize);
        feeds[`past_key_values.${i}.encoder.key`] = kv.key;
        feeds[`past_key_values.${i}.encoder.value`] = kv.value;
      }
    }
    feeds.use_cache_branch = new ort.Tensor('bool', new Uint8Array([this.isCached ? 1 : 0]), [1]);
    return feeds;
  }

  /**
   * The outputs the next step must fetch, out of the session's declared ones. Once the
   * cross K/V are cached, the graph passes them through unchanged as present.*.encoder.*;
   * fetching those would copy [batch, heads, patches, headDim] per layer out of
   * onnxruntime every step (6 MB at 32 rows on shapes-base) only to drop them in advance().
   */
  outputsToFetch(outputNames: readonly string[]): string[] {
    if (this.cross === null) return [...outputNames];
    return outputNames.filter((name) => !CROSS_PRESENT.test(name));
  }

  /** The cache after a step: new self-attention pasts; cross K/V taken once, then kept. */
  advance(outputs: Record<string, ort.Tensor>, numNewTokens: number, pool = this.pool): KvCache {
    const isEncDec = this.layout.naming === 'encoder-decoder';
    const self = this.self.map((_, i) => {
      const prefix = isEncDec ? `present.${i}.decoder` : `present.${i}`;
      return { key: outputs[`${prefix}.key`], value: outputs[`${prefix}.value`] };
    });
    const cross = !isEncDec ? null : this.cross ?? this.self.map((_, i) => ({
      key: outputs[`present.${i}.encoder.key`],
      value: outputs[`present.${i}.encoder.value`],
    }));
    return new KvCache(this.layout, this.batchSize, this.pastLength + numNewTokens, self, cross, pool);
  }

  /**
   * The cache after a step that returned only its new columns (per layer,
   * [batch, heads, count, headDim]): the graph's own Concat(past, new) on the sequence
   * axis, done here into arrays from `pool` instead of onnxruntime's fresh ones.
   */
  appendColumns(columns: readonly KV[], count: number, pool: KvPool): KvCache {
    this.live();
    if (columns.length !== this.layout.numLayers) throw new Error(`appendColumns: ${columns.length} layers of new columns for ${this.layout.numLayers}`);
    const self = this.self.map((kv, i) => ({ key: appendTensor(kv.key, columns[i].key, count, pool), value: appendTensor(kv.value, columns[i].value, count, pool) }));
    return new KvCache(this.layout, this.batchSize, this.pastLength + count, self, this.cross, pool, true);
  }

  /**
   * One new cache from rows of several (the one copy a continuous batch makes per step,
   * whatever joined or left). Each source's kept rows lose their first `fromColumn`
   * self-attention columns and are left-padded with zeros to the longest; the caller
   * builds the attention mask the same way (assembleStates), so padding is never
   * attended. Cross K/V must be present in all sources or none; `cross`, when given, are
   * the result's cross K/V already assembled (CrossKvSlab keeps them in place), not copied.
   */
  static assemble(sources: readonly KvRowSource[], cross?: readonly KV[]): KvCache {
    if (sources.length === 0) throw new Error('KvCache.assemble needs at least one source');
    const { layout, pool } = sources[0].cache;
    for (const { cache } of sources) cache.live();
    const hasCross = sources[0].cache.cross !== null;
    for (const { cache, rows, fromColumn } of sources) {
      if ((cache.cross !== null) !== hasCross) throw new Error('cannot join caches with and without cross-attention K/V');
      if (!Number.isInteger(fromColumn) || fromColumn < 0 || fromColumn > cache.pastLength) throw new RangeError(`fromColumn ${fromColumn} of ${cache.pastLength} columns`);
      if (rows.some((r) => !Number.isInteger(r) || r < 0 || r >= cache.batchSize)) throw new RangeError(`rows [${rows.join(', ')}] of a batch of ${cache.batchSize}`);
    }
    const pastLength = Math.max(...sources.map((s) => s.cache.pastLength - s.fromColumn));
    const layer = (pick: (c: KvCache) => readonly KV[], i: number, isSelf: boolean): KV => {
      const parts = (kv: 'key' | 'value'): TensorRows[] => sources.map((s) => ({ tensor: pick(s.cache)[i][kv], rows: s.rows, fromColumn: isSelf ? s.fromColumn : 0 }));
      const into = isSelf ? pool : undefined; // cross K/V copied here are kept for good: not pooled
      return { key: assembleTensor(parts('key'), isSelf ? pastLength : undefined, into), value: assembleTensor(parts('value'), isSelf ? pastLength : undefined, into) };
    };
    const self = sources[0].cache.self.map((_, i) => layer((c) => c.self, i, true));
    const batchSize = sources.reduce((n, s) => n + s.rows.length, 0);
    if (cross && (!hasCross || cross.length !== layout.numLayers || cross.some((kv) => kv.key.dims[0] !== batchSize || kv.value.dims[0] !== batchSize))) {
      throw new Error(`assembled cross K/V must have ${layout.numLayers} layers of ${batchSize} rows`);
    }
    const crossKv = !hasCross ? null : cross ?? sources[0].cache.cross!.map((_, i) => layer((c) => c.cross!, i, false));
    return new KvCache(layout, batchSize, pastLength, self, crossKv, pool, pool !== undefined);
  }

  /** One row's self-attention K/V at columns [fromColumn, fromColumn + count), per layer, as plain arrays ([heads, count, headDim] each). */
  rowColumns(row: number, fromColumn: number, count: number): RowKv {
    this.live();
    if (this.cross !== null) throw new Error('rowColumns: only self-attention caches hold a reusable prefix');
    const take = (tensor: ort.Tensor): FloatData => {
      const [, heads, len, d] = tensor.dims;
      const data = tensor.data as FloatData;
      const out = new (data.constructor as new (n: number) => FloatData)(heads * count * d);
      for (let h = 0; h < heads; h++) copyRun(out, h * count * d, data, ((row * heads + h) * len + fromColumn) * d, count * d);
      return out;
    };
    return { length: count, layers: this.self.map((kv) => ({ key: take(kv.key), value: take(kv.value) })) };
  }

  /** A cache whose rows hold these prefixes (all of one length) as their past: the start of a prefill that skips them. */
  static fromRows(layout: CacheLayout, rows: readonly RowKv[]): KvCache {
    const length = rows[0].length;
    if (layout.naming !== 'self-only') throw new Error('fromRows: only self-attention caches start from a prefix');
    if (rows.some((r) => r.length !== length)) throw new Error('fromRows: prefixes of different lengths');
    const stack = (pick: (r: RowKv) => FloatData): ort.Tensor => {
      const parts = rows.map(pick);
      const out = new (parts[0].constructor as new (n: number) => FloatData)(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0);
      return tensorOf(layout.dtype, out, [rows.length, layout.numHeads, length, layout.headDim]);
    };
    const self = Array.from({ length: layout.numLayers }, (_, i) => ({ key: stack((r) => r.layers[i].key), value: stack((r) => r.layers[i].value) }));
    return new KvCache(layout, rows.length, length, self, null);
  }

  /**
   * Rebuild the self-attention pasts from chosen columns: row r gets columns[r] (source
   * positions, in order) right-aligned in `width`, zeros in front. Speculative decoding
   * uses it to roll each row back to its accepted length and close the holes; the caller
   * rebuilds the attention mask to match (compactState).
   */
  gatherColumns(columns: readonly (readonly number[])[], width: number): KvCache {
    this.live();
    if (columns.length !== this.batchSize) throw new RangeError(`gatherColumns: ${columns.length} column lists for ${this.batchSize} rows`);
    const gather = (kv: KV): KV => ({ key: gatherColumnsOf(kv.key, columns, width, this.pool), value: gatherColumnsOf(kv.value, columns, width, this.pool) });
    return new KvCache(this.layout, this.batchSize, width, this.self.map(gather), this.cross, this.pool, this.pool !== undefined);
  }
}

/** One row's self-attention K/V over some columns, detached from any batch (a cached image prefix). */
export interface RowKv {
  readonly length: number;
  readonly layers: readonly { readonly key: FloatData; readonly value: FloatData }[]; // each [heads, length, headDim]
}

/** Rows of one cache taken into KvCache.assemble. */
export interface KvRowSource {
  readonly cache: KvCache;
  /** Row indices in `cache`, in the order they take in the result. */
  readonly rows: readonly number[];
  /** Leading self-attention columns to drop: padding none of `rows` attends. */
  readonly fromColumn: number;
}

function emptyKv(layout: CacheLayout, batchSize: number): KV {
  const dims = [batchSize, layout.numHeads, 0, layout.headDim];
  const make = () => (layout.dtype === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims));
  return { key: make(), value: make() };
}

export type { FloatData };

function tensorOf(type: ort.Tensor.Type, data: FloatData, dims: number[]): ort.Tensor {
  return type === 'float16' ? new ort.Tensor('float16', data as Uint16Array, dims) : new ort.Tensor('float32', data as Float32Array, dims);
}

interface TensorRows {
  tensor: ort.Tensor; // [batch, heads, len, d]
  rows: readonly number[];
  fromColumn: number;
}

/**
 * [Σ rows, heads, length, d] from rows of [batch, heads, len, d] tensors: each row's
 * columns from `fromColumn` on, right-aligned, zeros in front. `length` undefined: the
 * parts' own length, which must agree (cross-attention K/V, one column per patch).
 */
function assembleTensor(parts: readonly TensorRows[], length?: number, pool?: KvPool): ort.Tensor {
  const [, heads, , d] = parts[0].tensor.dims;
  const outLength = length ?? parts[0].tensor.dims[2];
  const numRows = parts.reduce((n, p) => n + p.rows.length, 0);
  const first = parts[0].tensor.data as FloatData;
  const out = allocate(first, numRows * heads * outLength * d, pool);
  let outRow = 0;
  for (const { tensor, rows, fromColumn } of parts) {
    const len = tensor.dims[2];
    const kept = len - fromColumn;
    if (tensor.dims[1] !== heads || tensor.dims[3] !== d || kept > outLength || (length === undefined && len !== outLength)) {
      throw new Error(`cannot assemble [${tensor.dims.join(', ')}] into [${numRows}, ${heads}, ${outLength}, ${d}]`);
    }
    const data = tensor.data as FloatData;
    for (const row of rows) {
      for (let h = 0; h < heads; h++) {
        const src = ((row * heads + h) * len + fromColumn) * d;
        copyRun(out, ((outRow * heads + h) * outLength + outLength - kept) * d, data, src, kept * d);
      }
      outRow++;
    }
  }
  return tensorOf(parts[0].tensor.type, out, [numRows, heads, outLength, d]);
}

/** [batch, heads, len, d] → [batch, heads, width, d]: row r's chosen columns, right-aligned. */
function gatherColumnsOf(tensor: ort.Tensor, columns: readonly (readonly number[])[], width: number, pool?: KvPool): ort.Tensor {
  const [batch, heads, len, d] = tensor.dims;
  const data = tensor.data as FloatData;
  const out = allocate(data, batch * heads * width * d, pool);
  for (let row = 0; row < batch; row++) {
    const picks = columns[row];
    const offset = width - picks.length;
    for (let h = 0; h < heads; h++) {
      const src = (row * heads + h) * len;
      const dst = (row * heads + h) * width + offset;
      // Runs of consecutive columns (all of them but a verify step's rejected drafts) are copied whole.
      for (let i = 0; i < picks.length; ) {
        let end = i + 1;
        while (end < picks.length && picks[end] === picks[end - 1] + 1) end++;
        copyRun(out, (dst + i) * d, data, (src + picks[i]) * d, (end - i) * d);
        i = end;
      }
    }
  }
  return tensorOf(tensor.type, out, [batch, heads, width, d]);
}

/** Below this many values a loop copies: `set(subarray)` would allocate a view per run, and the decode steps copy thousands of short runs. */
const LOOP_COPY = 512;

/** out[to, to + n) = from[at, at + n). */
function copyRun(out: FloatData, to: number, from: FloatData, at: number, n: number): void {
  if (n >= LOOP_COPY) out.set(from.subarray(at, at + n), to);
  else for (let i = 0; i < n; i++) out[to + i] = from[at + i];
}

/** A zeroed array like `like`: from the pool when there is one. */
function allocate(like: FloatData, length: number, pool?: KvPool): FloatData {
  return pool ? pool.take(like, length) : new (like.constructor as new (n: number) => FloatData)(length);
}

/** Concat(past [batch, heads, len, d], columns [batch, heads, count, d]) on the sequence axis, into a pooled array. */
function appendTensor(past: ort.Tensor, columns: ort.Tensor, count: number, pool: KvPool): ort.Tensor {
  const [batch, heads, len, d] = past.dims;
  if (columns.dims[0] !== batch || columns.dims[1] !== heads || columns.dims[2] !== count || columns.dims[3] !== d) {
    throw new Error(`cannot append [${columns.dims.join(', ')}] to [${past.dims.join(', ')}]`);
  }
  const from = past.data as FloatData;
  const added = columns.data as FloatData;
  const width = len + count;
  const out = pool.take(from.length > 0 ? from : added, batch * heads * width * d, true);
  for (let r = 0; r < batch * heads; r++) {
    if (len > 0) copyRun(out, r * width * d, from, r * len * d, len * d);
    copyRun(out, (r * width + len) * d, added, r * count * d, count * d);
  }
  return tensorOf(past.type, out, [batch, heads, width, d]);
}
