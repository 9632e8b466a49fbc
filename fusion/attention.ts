// Attention maps over the image, from the decoder's attention weights at the position
// that produced a token: per layer the mean over heads, renormalised over the image
// columns, laid out on the patch grid of the preprocessed image; and one default map
// combining the layers. Pure numbers, no tensors. These are attention weights, not
// attributions: where the model looked, not why it wrote the word.
import type { TokenAttention } from '../src/contract/types.ts';

/** One row's attention at one position: [layers, heads, keys], and which keys are image patches. */
export interface RowAttention {
  readonly data: Float32Array; // [layers, heads, keys]
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKeys: number;
  /** Image patches are keys [imageStart, imageStart + numPatches). */
  readonly imageStart: number;
  readonly numPatches: number;
  /** False for cross-attention, where every key is a patch: no image share to report. */
  readonly hasTextKeys: boolean;
}

export type Aggregation = (layers: readonly Float32Array[]) => Float32Array;

/**
 * Ways to combine the layers' maps (each the mean of its heads). Which one points best
 * depends on the trained weights, so each model folder names its own in `attention.json`,
 * written by the pointing game (`iris eval DIR --attention --update-model` scores them
 * all and keeps the one whose worst word kind is best). Two trainings of shapes-base from
 * different data disagreed: one needed `first+last` (its middle layer pointed anywhere),
 * the other points best with `mean`.
 */
export const AGGREGATIONS: Readonly<Record<string, Aggregation>> = {
  'first+last': (layers) => mean(layers.length > 1 ? [layers[0], layers[layers.length - 1]] : layers),
  mean: (layers) => mean(layers),
  product: (layers) => normalized(layers.reduce((acc, l) => acc.map((v, i) => v * Math.max(l[i], 1e-12)), new Float32Array(layers[0].length).fill(1))),
  first: (layers) => layers[0],
  last: (layers) => layers[layers.length - 1],
};

/** For a folder without `attention.json`: every layer counts the same. */
export const DEFAULT_AGGREGATION = 'mean';

/** Throws a RangeError naming the known aggregations when `name` is not one. */
export function checkAggregation(name: string): string {
  if (!Object.hasOwn(AGGREGATIONS, name)) throw new RangeError(`unknown aggregation '${name}'; known: ${Object.keys(AGGREGATIONS).join(', ')}`);
  return name;
}

/** The patch grid: a square when the count is a square (ViT patches of a square input), else one row. */
export function gridOf(numPatches: number): { rows: number; cols: number } {
  const side = Math.round(Math.sqrt(numPatches));
  return side * side === numPatches ? { rows: side, cols: side } : { rows: 1, cols: numPatches };
}

/** Per layer, the mean over heads of the image columns, renormalised to sum to 1; and the share that went to the image. */
export function layerMaps(row: RowAttention): { layers: Float32Array[]; imageShare: number | null } {
  const { data, numLayers, numHeads, numKeys, imageStart, numPatches } = row;
  let imageMass = 0;
  const layers = Array.from({ length: numLayers }, (_, l) => {
    const map = new Float32Array(numPatches);
    for (let h = 0; h < numHeads; h++) {
      const base = (l * numHeads + h) * numKeys + imageStart;
      for (let p = 0; p < numPatches; p++) map[p] += data[base + p] / numHeads;
    }
    imageMass += map.reduce((a, b) => a + b, 0) / numLayers;
    return normalized(map);
  });
  return { layers, imageShare: row.hasTextKeys ? imageMass : null };
}

export function tokenAttention(row: RowAttention, aggregation = DEFAULT_AGGREGATION): TokenAttention {
  const { layers, imageShare } = layerMaps(row);
  const combine = AGGREGATIONS[checkAggregation(aggregation)];
  return {
    ...gridOf(row.numPatches),
    weights: Array.from(combine(layers)),
    aggregation: `${aggregation} of ${row.numLayers} decoder layers (each the mean of its ${row.numHeads} heads, renormalised over the image)`,
    layers: layers.map((l) => Array.from(l)),
    imageShare,
  };
}

/** Index of the largest weight (the first, on ties). */
export function peakOf(weights: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < weights.length; i++) if (weights[i] > weights[best]) best = i;
  return best;
}

function mean(layers: readonly Float32Array[]): Float32Array {
  return normalized(layers.reduce((acc, l) => acc.map((v, i) => v + l[i]), new Float32Array(layers[0].length)));
}

function normalized(map: Float32Array): Float32Array {
  const sum = map.reduce((a, b) => a + b, 0);
  return sum > 0 ? map.map((v) => v / sum) : map.fill(1 / map.length);
}
