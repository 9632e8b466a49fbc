// The batch-merging operations on hand-made arrays: KvCache.assemble, the matching mask
// and feature merges,
// and which outputs a step fetches once the cross K/V are cached.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { assembleEncoderRows } from '../../fusion/conditioning.ts';
import { assembleStates, numLeadingPadColumns, type RowsState } from '../../text/batch-inputs.ts';
import { KvCache, type CacheLayout } from '../../text/kv-cache.ts';

const LAYOUT: CacheLayout = { naming: 'encoder-decoder', numLayers: 1, numHeads: 2, headDim: 1, dtype: 'float32' };
const PATCHES = 2;

/** Self K = 100·row + 10·head + column + 1 (so zeros are padding); V = −K; cross K/V = 1000 + 10·row + head. */
function handMade(batch: number, length: number, rowBase = 0): KvCache {
  const self = (sign: number) => new ort.Tensor('float32', Float32Array.from({ length: batch * 2 * length }, (_, i) => {
    const [row, head, column] = [Math.floor(i / (2 * length)), Math.floor(i / length) % 2, i % length];
    return sign * (100 * (row + rowBase) + 10 * head + column + 1);
  }), [batch, 2, length, 1]);
  const cross = () => new ort.Tensor('float32', Float32Array.from({ length: batch * 2 * PATCHES }, (_, i) => 1000 + 10 * (Math.floor(i / (2 * PATCHES)) + rowBase) + (Math.floor(i / PATCHES) % 2)), [batch, 2, PATCHES, 1]);
  const outputs = { 'present.0.decoder.key': self(1), 'present.0.decoder.value': self(-1), 'present.0.encoder.key': cross(), 'present.0.encoder.value': cross() };
  return KvCache.empty(LAYOUT, batch).advance(outputs, length);
}

/** The tensors a cache feeds, as nested arrays [row][head][column]. */
function rowsOf(cache: KvCache, name: string): number[][][] {
  const tensor = cache.feeds()[name];
  const [batch, heads, length] = tensor.dims;
  const data = Array.from(tensor.data as Float32Array);
  return Array.from({ length: batch }, (_, r) => Array.from({ length: heads }, (_, h) => data.slice((r * heads + h) * length, (r * heads + h + 1) * length)));
}

describe('KvCache.assemble', () => {
  it('takes chosen rows of several caches, drops leading columns and left-pads to the longest', () => {
    const a = handMade(3, 4); // rows 0..2, 4 columns
    const b = handMade(2, 2, 10); // rows 10, 11, 2 columns
    const merged = KvCache.assemble([{ cache: a, rows: [2, 0], fromColumn: 1 }, { cache: b, rows: [1], fromColumn: 0 }]);
    expect([merged.batchSize, merged.pastLength]).toEqual([3, 3]);
    expect(rowsOf(merged, 'past_key_values.0.decoder.key')).toEqual([
      [[202, 203, 204], [212, 213, 214]],
      [[2, 3, 4], [12, 13, 14]],
      [[0, 1101, 1102], [0, 1111, 1112]],
    ]);
    expect(rowsOf(merged, 'past_key_values.0.decoder.value')[1]).toEqual([[-2, -3, -4], [-12, -13, -14]]);
    expect(rowsOf(merged, 'past_key_values.0.encoder.key')).toEqual([
      [[1020, 1020], [1021, 1021]],
      [[1000, 1000], [1001, 1001]],
      [[1110, 1110], [1111, 1111]],
    ]);
  });

  it('joins whole caches, keeps some rows, or drops leading columns, each as one source list', () => {
    const a = handMade(2, 3);
    const b = handMade(1, 1, 5);
    const joined = KvCache.assemble([{ cache: a, rows: [0, 1], fromColumn: 0 }, { cache: b, rows: [0], fromColumn: 0 }]);
    expect(rowsOf(joined, 'past_key_values.0.decoder.key')[2]).toEqual([[0, 0, 501], [0, 0, 511]]);
    expect(rowsOf(KvCache.assemble([{ cache: a, rows: [1], fromColumn: 0 }]), 'past_key_values.0.decoder.key')).toEqual([[[101, 102, 103], [111, 112, 113]]]);
    expect(rowsOf(KvCache.assemble([{ cache: a, rows: [0, 1], fromColumn: 2 }]), 'past_key_values.0.decoder.key')).toEqual([[[3], [13]], [[103], [113]]]);
  });

  it('takes already assembled cross K/V as they are, when their rows match', () => {
    const a = handMade(2, 3);
    const given = handMade(1, 1, 7).crossKv!;
    const merged = KvCache.assemble([{ cache: a, rows: [1], fromColumn: 0 }], given);
    expect(merged.crossKv).toBe(given);
    expect(() => KvCache.assemble([{ cache: a, rows: [0, 1], fromColumn: 0 }], given)).toThrow(/1 layers of 2 rows/);
  });

  it('rejects rows or columns outside the source, and mixing caches with and without cross K/V', () => {
    const a = handMade(2, 3);
    expect(() => KvCache.assemble([{ cache: a, rows: [2], fromColumn: 0 }])).toThrow(/rows \[2\] of a batch of 2/);
    expect(() => KvCache.assemble([{ cache: a, rows: [0], fromColumn: 4 }])).toThrow(/fromColumn 4 of 3/);
    expect(() => KvCache.assemble([{ cache: a, rows: [0], fromColumn: 0 }, { cache: KvCache.empty(LAYOUT, 1), rows: [0], fromColumn: 0 }])).toThrow(/with and without/);
    expect(() => KvCache.assemble([])).toThrow(/at least one/);
  });
});

describe('outputsToFetch', () => {
  const names = ['logits', 'present.0.decoder.key', 'present.0.decoder.value', 'present.0.encoder.key', 'present.0.encoder.value'];

  it('fetches the cross K/V only on the step that computes them', () => {
    expect(KvCache.empty(LAYOUT, 1).outputsToFetch(names)).toEqual(names);
    expect(handMade(1, 2).outputsToFetch(names)).toEqual(['logits', 'present.0.decoder.key', 'present.0.decoder.value']);
  });
});

describe('assembleStates and numLeadingPadColumns', () => {
  // Row 0 attends columns 2..3, row 1 columns 1..3, row 2 columns 3.
  const state: RowsState = { batchSize: 3, width: 4, attentionMask: Int32Array.from([0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1]), nextPosition: Int32Array.from([2, 3, 1]) };

  it('counts the leading columns none of the chosen rows attends', () => {
    expect(numLeadingPadColumns(state)).toBe(1);
    expect(numLeadingPadColumns(state, [0, 2])).toBe(2);
    expect(numLeadingPadColumns(state, [2])).toBe(3);
  });

  it('merges masks as KvCache.assemble merges caches', () => {
    const other: RowsState = { batchSize: 1, width: 1, attentionMask: Int32Array.from([1]), nextPosition: Int32Array.from([1]) };
    const merged = assembleStates([{ state, rows: [2, 0], fromColumn: 2 }, { state: other, rows: [0], fromColumn: 0 }]);
    expect(merged.width).toBe(2);
    expect(Array.from(merged.attentionMask)).toEqual([0, 1, 1, 1, 0, 1]);
    expect(Array.from(merged.nextPosition)).toEqual([1, 2, 1]);
  });
});

describe('assembleEncoderRows', () => {
  it('gathers rows of several batches in order and checks their shapes agree', () => {
    const a = { data: Float32Array.from([1, 1, 2, 2]), numPatches: 1, hiddenSize: 2 };
    const b = { data: Float32Array.from([9, 9]), numPatches: 1, hiddenSize: 2 };
    expect(Array.from(assembleEncoderRows([{ states: a, rows: [1] }, { states: b, rows: [0] }]).data)).toEqual([2, 2, 9, 9]);
    expect(() => assembleEncoderRows([{ states: a, rows: [0] }, { states: { ...b, hiddenSize: 1 }, rows: [0] }])).toThrow(/disagree/);
  });
});
