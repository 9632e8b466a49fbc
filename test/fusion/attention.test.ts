// Attention maps on hand-made weights: per-layer head means over the image columns,
// the image share, the combinations, and the grid.
import { describe, expect, it } from 'vitest';
import { AGGREGATIONS, gridOf, layerMaps, peakOf, tokenAttention, type RowAttention } from '../../fusion/attention.ts';

/** 2 layers × 2 heads over 2 text keys then 4 patches. */
function row(hasTextKeys: boolean): RowAttention {
  const data = Float32Array.from([
    /* l0 h0 */ 0.5, 0, 0.5, 0, 0, 0, /* l0 h1 */ 0.5, 0, 0, 0.5, 0, 0,
    /* l1 h0 */ 0, 0, 0, 0, 0, 1, /* l1 h1 */ 0, 0, 0, 0, 1, 0,
  ]);
  return { data, numLayers: 2, numHeads: 2, numKeys: 6, imageStart: 2, numPatches: 4, hasTextKeys };
}

describe('attention maps', () => {
  it('averages heads over the image columns, renormalises, and reports the image share', () => {
    const { layers, imageShare } = layerMaps(row(true));
    expect(layers.map((l) => Array.from(l))).toEqual([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]]);
    expect(imageShare).toBeCloseTo(0.75); // layer 0 half on text, layer 1 all on the image
    expect(layerMaps(row(false)).imageShare).toBeNull();
  });

  it('combines layers: first+last, mean, product, first, last', () => {
    const layers = [Float32Array.from([0.7, 0.1, 0.1, 0.1]), Float32Array.from([0.1, 0.1, 0.1, 0.7]), Float32Array.from([0.1, 0.6, 0.2, 0.1])];
    // the middle layer is left out: first+last peaks where the first does, not where the middle does
    expect(Array.from(AGGREGATIONS['first+last'](layers)).map((v) => +v.toFixed(3))).toEqual([0.4, 0.35, 0.15, 0.1]);
    expect(peakOf(AGGREGATIONS.mean([layers[1], layers[2], layers[2]]))).toBe(1);
    expect(peakOf(AGGREGATIONS.mean(layers))).toBe(0);
    expect(peakOf(AGGREGATIONS.last(layers))).toBe(1);
    expect(AGGREGATIONS.product(layers).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('lays square patch counts out as a square grid', () => {
    expect(gridOf(64)).toEqual({ rows: 8, cols: 8 });
    expect(gridOf(6)).toEqual({ rows: 1, cols: 6 });
    const t = tokenAttention(row(false));
    expect([t.rows, t.cols, t.weights.length]).toEqual([2, 2, 4]);
    expect(() => tokenAttention(row(false), 'nope')).toThrow(/unknown aggregation/);
  });
});
