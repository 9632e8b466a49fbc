// The cross-attention K/V of a continuously batched encoder-decoder, kept in place. They
// are a function of each row's image only, computed by the row's prefill and then passed
// back unchanged every step, but onnxruntime wants one [batch, heads, patches, headDim]
// tensor per layer: copying them into a new batch whenever a row joins or leaves moved
// 6 MB per step at 32 rows on shapes-base. Here each layer's K and V live in a buffer
// with spare rows; a leaving row's successors move down in place (memmove, no
// allocation) and joining rows are written after the last one. The tensors handed out
// are views: owned by one batch runner, valid until its next retain/append.
import * as ort from 'onnxruntime-node';
import type { KV } from './kv-cache.ts';

type FloatData = Float32Array | Uint16Array;
type Layer = { key: FloatData; value: FloatData };

export class CrossKvSlab {
  private layers: Layer[] = [];
  private numLayers = 0;
  private numRows = 0;
  private rowDims: number[] = []; // [heads, patches, headDim]
  private type: 'float32' | 'float16' = 'float32';

  get size(): number {
    return this.numRows;
  }

  /** Forget every row (the batch was dropped). */
  clear(): void {
    this.numRows = 0;
  }

  /** Keep only `rows` (ascending indices), moving them down in place. */
  retainRowsInPlace(rows: readonly number[]): void {
    rows.forEach((row, i) => {
      if (!Number.isInteger(row) || row < i || row >= this.numRows || (i > 0 && row <= rows[i - 1])) {
        throw new RangeError(`retainRowsInPlace: rows must be ascending indices below ${this.numRows}, got [${rows.join(', ')}]`);
      }
    });
    const rowSize = this.rowSize;
    for (const layer of this.layers) {
      for (const data of [layer.key, layer.value]) {
        rows.forEach((row, i) => {
          if (row !== i) data.copyWithin(i * rowSize, row * rowSize, (row + 1) * rowSize);
        });
      }
    }
    this.numRows = rows.length;
  }

  /** Append rows of another batch's cross K/V (per layer, [batch, heads, patches, headDim]). */
  appendRows(cross: readonly KV[], rows: readonly number[]): void {
    if (rows.length === 0) return;
    this.shapeFrom(cross);
    this.reserve(this.numRows + rows.length);
    const rowSize = this.rowSize;
    cross.forEach((kv, l) => {
      for (const part of ['key', 'value'] as const) {
        const source = kv[part].data as FloatData;
        rows.forEach((row, i) => this.layers[l][part].set(source.subarray(row * rowSize, (row + 1) * rowSize), (this.numRows + i) * rowSize));
      }
    });
    this.numRows += rows.length;
  }

  /** Views of the current rows, one K/V pair per layer. */
  tensors(): KV[] {
    const dims = [this.numRows, ...this.rowDims];
    const view = (data: FloatData): ort.Tensor => {
      const rowsOnly = data.subarray(0, this.numRows * this.rowSize);
      return this.type === 'float16' ? new ort.Tensor('float16', rowsOnly as Uint16Array, dims) : new ort.Tensor('float32', rowsOnly as Float32Array, dims);
    };
    return this.layers.map((layer) => ({ key: view(layer.key), value: view(layer.value) }));
  }

  private get rowSize(): number {
    return this.rowDims.reduce((n, d) => n * d, 1);
  }

  /** The first rows fix the layout; later ones must match it. */
  private shapeFrom(cross: readonly KV[]): void {
    const [, ...rowDims] = cross[0].key.dims;
    if (this.numLayers === 0) {
      this.numLayers = cross.length;
      this.rowDims = rowDims;
      this.type = cross[0].key.type === 'float16' ? 'float16' : 'float32';
      return;
    }
    if (cross.length !== this.numLayers || rowDims.some((d, i) => d !== this.rowDims[i])) {
      throw new Error(`cross K/V of ${cross.length} layers × [${rowDims.join(', ')}] do not match the slab's ${this.numLayers} × [${this.rowDims.join(', ')}]`);
    }
  }

  /** Grow (doubling) to hold `numRows` rows; the rows held so far are kept. */
  private reserve(numRows: number): void {
    const capacity = this.layers.length === 0 ? 0 : this.layers[0].key.length / this.rowSize;
    if (numRows <= capacity) return;
    const next = Math.max(numRows, 2 * capacity, 8) * this.rowSize;
    const grow = (old: FloatData | undefined): FloatData => {
      const data = this.type === 'float16' ? new Uint16Array(next) : new Float32Array(next);
      if (old) data.set(old.subarray(0, this.numRows * this.rowSize));
      return data;
    };
    this.layers = Array.from({ length: this.numLayers }, (_, l) => ({ key: grow(this.layers[l]?.key), value: grow(this.layers[l]?.value) }));
  }
}
