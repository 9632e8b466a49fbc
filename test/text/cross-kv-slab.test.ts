// CrossKvSlab on hand-made arrays: rows leave in place, joiners are appended, capacity
// grows without losing rows, and the tensors it hands out are views of its current rows.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { CrossKvSlab } from '../../text/cross-kv-slab.ts';
import type { KV } from '../../text/kv-cache.ts';

const [HEADS, PATCHES, DIM] = [2, 3, 1];
const ROW = HEADS * PATCHES * DIM;

/** Two layers; every value of row r in layer l is 100·l + r (K) and −(100·l + r) (V). */
function cross(rowValues: readonly number[]): KV[] {
  const tensor = (l: number, sign: number) => new ort.Tensor('float32', Float32Array.from({ length: rowValues.length * ROW }, (_, i) => sign * (100 * l + rowValues[Math.floor(i / ROW)])), [rowValues.length, HEADS, PATCHES, DIM]);
  return [0, 1].map((l) => ({ key: tensor(l, 1), value: tensor(l, -1) }));
}

/** Per layer, the value each row holds (checking the row is uniform). */
function rowsOf(kvs: readonly KV[], part: 'key' | 'value' = 'key'): number[][] {
  return kvs.map((kv) => {
    const data = Array.from(kv[part].data as Float32Array);
    expect(kv[part].dims).toEqual([data.length / ROW, HEADS, PATCHES, DIM]);
    return Array.from({ length: data.length / ROW }, (_, r) => {
      const row = data.slice(r * ROW, (r + 1) * ROW);
      expect(new Set(row).size).toBe(1);
      return row[0];
    });
  });
}

describe('CrossKvSlab', () => {
  it('appends joining rows and keeps leaving rows out, in order, in place', () => {
    const slab = new CrossKvSlab();
    slab.appendRows(cross([1, 2, 3, 4]), [0, 1, 2, 3]);
    const before = slab.tensors()[0].key.data as Float32Array;
    slab.retainRowsInPlace([1, 3]);
    slab.appendRows(cross([7, 8, 9]), [2, 0]);
    expect(slab.size).toBe(4);
    expect(rowsOf(slab.tensors())).toEqual([[2, 4, 9, 7], [102, 104, 109, 107]]);
    expect(rowsOf(slab.tensors(), 'value')[1]).toEqual([-102, -104, -109, -107]);
    expect((slab.tensors()[0].key.data as Float32Array).buffer).toBe(before.buffer); // no new buffer
  });

  it('grows past its capacity keeping the rows it holds', () => {
    const slab = new CrossKvSlab();
    const values = Array.from({ length: 20 }, (_, i) => i);
    for (const v of values) slab.appendRows(cross([v]), [0]);
    expect(rowsOf(slab.tensors())[0]).toEqual(values);
    slab.retainRowsInPlace([0, 19]);
    expect(rowsOf(slab.tensors())[1]).toEqual([100, 119]);
    slab.clear();
    expect(slab.size).toBe(0);
    expect(rowsOf(slab.tensors())).toEqual([[], []]);
  });

  it('rejects unordered or out-of-range rows and mismatched shapes', () => {
    const slab = new CrossKvSlab();
    slab.appendRows(cross([1, 2, 3]), [0, 1, 2]);
    expect(() => slab.retainRowsInPlace([2, 1])).toThrow(/ascending/);
    expect(() => slab.retainRowsInPlace([3])).toThrow(/below 3/);
    const other = [{ key: new ort.Tensor('float32', new Float32Array(4), [1, 2, 2, 1]), value: new ort.Tensor('float32', new Float32Array(4), [1, 2, 2, 1]) }];
    expect(() => slab.appendRows(other, [0])).toThrow(/do not match/);
  });
});
