// Owner of the decoder's past key/values for a batch of rows, for both cache namings:
//  - 'self-only' (GPT-2 family): past_key_values.{i}.key/value; cross-attention K/V are
//    recomputed inside the graph every step.
//  - 'encoder-decoder' (TrOCR, BART, ...): past_key_values.{i}.decoder.* plus
//    past_key_values.{i}.encoder.*; the cross K/V come out of the first step and are
//    passed back unchanged afterwards (use_cache_branch = true), never recomputed.
import * as ort from 'onnxruntime-node';

export type CacheNaming = 'self-only' | 'encoder-decoder';

export interface CacheLayout {
  naming: CacheNaming;
  numLayers: number;
  numHeads: number;
  headDim: number;
  /** Element type of the past tensors (fp16 exports carry float16 pasts). */
  dtype: 'float32' | 'float16';
}

type KV = { key: ort.Tensor; value: ort.Tensor }; // each [batch, heads, len, headDim]

const SELF_ONLY = /^past_key_values\.(\d+)\.(key|value)$/;
const ENC_DEC = /^past_key_values\.(\d+)\.decoder\.(key|value)$/;
const CROSS_PRESENT = /^present\.\d+\.encoder\.(key|value)$/;

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
  private constructor(
    readonly layout: CacheLayout,
    readonly batchSize: number,
    readonly pastLength: number,
    private readonly self: readonly KV[],
    /** null until the first step of an encoder-decoder model has produced them. */
    private readonly cross: readonly KV[] | null,
  ) {}

  static empty(layout: CacheLayout, batchSize: number): KvCache {
    const self = Array.from({ length: layout.numLayers }, () => emptyKv(layout, batchSize));
    return new KvCache(layout, batchSize, 0, self, null);
  }

  get hasCrossAttentionCache(): boolean {
    return this.cross !== null;
  }

  /** The past inputs of the next step, by the session's input names (plus use_cache_branch). */
  feeds(): Record<string, ort.Tensor> {
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
    const isCached = isEncDec ? this.cross !== null : this.pastLength > 0;
    feeds.use_cache_branch = new ort.Tensor('bool', new Uint8Array([isCached ? 1 : 0]), [1]);
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
  advance(outputs: Record<string, ort.Tensor>, numNewTokens: number): KvCache {
    const isEncDec = this.layout.naming === 'encoder-decoder';
    const self = this.self.map((_, i) => {
      const prefix = isEncDec ? `present.${i}.decoder` : `present.${i}`;
      return { key: outputs[`${prefix}.key`], value: outputs[`${prefix}.value`] };
    });
    const cross = !isEncDec ? null : this.cross ?? this.self.map((_, i) => ({
      key: outputs[`present.${i}.encoder.key`],
      value: outputs[`present.${i}.encoder.value`],
    }));
    return new KvCache(this.layout, this.batchSize, this.pastLength + numNewTokens, self, cross);
  }

  /** Bytes held by the past tensors (self and cross), for budget accounting. */
  get byteLength(): number {
    const sum = (kvs: readonly KV[]) => kvs.reduce((n, kv) => n + bytesOf(kv.key) + bytesOf(kv.value), 0);
    return sum(this.self) + (this.cross ? sum(this.cross) : 0);
  }

  /**
   * Join batches into one (rows in argument order). Shorter pasts are left-padded with
   * zeros to the longest; the caller pads the attention mask to match (concatStates), so
   * the padding is never attended. Cross K/V must be present in all or none.
   */
  static concat(caches: readonly KvCache[]): KvCache {
    if (caches.length === 0) throw new Error('KvCache.concat needs at least one cache');
    const { layout } = caches[0];
    const hasCross = caches[0].cross !== null;
    if (caches.some((c) => (c.cross !== null) !== hasCross)) throw new Error('cannot join caches with and without cross-attention K/V');
    const pastLength = Math.max(...caches.map((c) => c.pastLength));
    const join = (pick: (c: KvCache) => readonly KV[], isSelf: boolean): KV[] =>
      pick(caches[0]).map((_, i) => ({
        key: concatRows(caches.map((c) => (isSelf ? leftPad(pick(c)[i].key, pastLength) : pick(c)[i].key))),
        value: concatRows(caches.map((c) => (isSelf ? leftPad(pick(c)[i].value, pastLength) : pick(c)[i].value))),
      }));
    const batchSize = caches.reduce((n, c) => n + c.batchSize, 0);
    const cross = hasCross ? join((c) => c.cross!, false) : null;
    return new KvCache(layout, batchSize, pastLength, join((c) => c.self, true), cross);
  }

  /** Keep only the given rows (e.g. drop rows that finished); order follows `rows`. */
  selectRows(rows: readonly number[]): KvCache {
    const pick = (kv: KV): KV => ({ key: gatherRows(kv.key, rows), value: gatherRows(kv.value, rows) });
    return new KvCache(this.layout, rows.length, this.pastLength, this.self.map(pick), this.cross?.map(pick) ?? null);
  }

  /**
   * Drop the first `columns` self-attention positions of every row. Only for columns no
   * row attends to (all-zero attention mask), e.g. the left padding left behind once the
   * longest row of a continuously batched cache has retired: it bounds the past length.
   */
  dropLeadingColumns(columns: number): KvCache {
    if (!Number.isInteger(columns) || columns < 0 || columns > this.pastLength) {
      throw new RangeError(`dropLeadingColumns: ${columns} of ${this.pastLength} columns`);
    }
    if (columns === 0) return this;
    const drop = (kv: KV): KV => ({ key: sliceFromColumn(kv.key, columns), value: sliceFromColumn(kv.value, columns) });
    return new KvCache(this.layout, this.batchSize, this.pastLength - columns, this.self.map(drop), this.cross);
  }
}

function emptyKv(layout: CacheLayout, batchSize: number): KV {
  const dims = [batchSize, layout.numHeads, 0, layout.headDim];
  const make = () => (layout.dtype === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims));
  return { key: make(), value: make() };
}

/** Rows of a [batch, ...] float tensor, copied into a new tensor. */
export function gatherRows(tensor: ort.Tensor, rows: readonly number[]): ort.Tensor {
  const [batch, ...rest] = tensor.dims;
  const data = tensor.data as Float32Array | Uint16Array;
  const rowSize = batch === 0 ? 0 : data.length / batch;
  const out = new (data.constructor as typeof Float32Array | typeof Uint16Array)(rows.length * rowSize);
  rows.forEach((r, i) => out.set(data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
  return tensorOf(tensor.type, out, [rows.length, ...rest]);
}

function bytesOf(tensor: ort.Tensor): number {
  return (tensor.data as Float32Array | Uint16Array).byteLength;
}

type FloatData = Float32Array | Uint16Array;

function tensorOf(type: ort.Tensor.Type, data: FloatData, dims: number[]): ort.Tensor {
  return type === 'float16' ? new ort.Tensor('float16', data as Uint16Array, dims) : new ort.Tensor('float32', data as Float32Array, dims);
}

/** [batch, heads, len, d] → [batch, heads, length, d] with zeros in front. */
function leftPad(tensor: ort.Tensor, length: number): ort.Tensor {
  const [batch, heads, len, d] = tensor.dims;
  if (len === length) return tensor;
  const data = tensor.data as FloatData;
  const out = new (data.constructor as new (n: number) => FloatData)(batch * heads * length * d);
  for (let bh = 0; bh < batch * heads; bh++) out.set(data.subarray(bh * len * d, (bh + 1) * len * d), (bh * length + length - len) * d);
  return tensorOf(tensor.type, out, [batch, heads, length, d]);
}

/** [batch, heads, len, d] → [batch, heads, len - from, d]: positions from `from` on. */
function sliceFromColumn(tensor: ort.Tensor, from: number): ort.Tensor {
  const [batch, heads, len, d] = tensor.dims;
  const data = tensor.data as FloatData;
  const length = len - from;
  const out = new (data.constructor as new (n: number) => FloatData)(batch * heads * length * d);
  for (let bh = 0; bh < batch * heads; bh++) out.set(data.subarray((bh * len + from) * d, (bh + 1) * len * d), bh * length * d);
  return tensorOf(tensor.type, out, [batch, heads, length, d]);
}

/** Stack tensors of equal trailing shape along the batch axis. */
function concatRows(tensors: readonly ort.Tensor[]): ort.Tensor {
  const [, ...rest] = tensors[0].dims;
  const parts = tensors.map((t) => t.data as FloatData);
  const out = new (parts[0].constructor as new (n: number) => FloatData)(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return tensorOf(tensors[0].type, out, [tensors.reduce((n, t) => n + t.dims[0], 0), ...rest]);
}
