// Conditioning the decoder on image features: each decoder row reads one image's
// embedding, so rows that share an image share its features.
import type { EncoderStates } from '../text/decoder-runner.ts';
import type { ImageEmbedding } from '../vision/encoder.ts';

/** encoder_hidden_states for the rows: row r gets embeddings[rowImage[r]]. Throws on shape mismatches. */
export function gatherEncoderStates(embeddings: readonly ImageEmbedding[], rowImage: readonly number[]): EncoderStates {
  if (embeddings.length === 0 || rowImage.length === 0) throw new Error('conditioning needs at least one image and one row');
  const { numPatches, hiddenSize } = embeddings[0];
  for (const e of embeddings) {
    if (e.numPatches !== numPatches || e.hiddenSize !== hiddenSize || e.data.length !== numPatches * hiddenSize) {
      throw new Error(`image embeddings disagree: [${e.numPatches}, ${e.hiddenSize}] vs [${numPatches}, ${hiddenSize}]`);
    }
  }
  const per = numPatches * hiddenSize;
  const data = new Float32Array(rowImage.length * per); // [rows, patches, d]
  rowImage.forEach((image, row) => {
    if (!Number.isInteger(image) || image < 0 || image >= embeddings.length) {
      throw new Error(`row ${row} refers to image ${image}, but there are ${embeddings.length}`);
    }
    data.set(embeddings[image].data, row * per);
  });
  return { data, numPatches, hiddenSize };
}

/** Rows of several batches' features, in order (the features side of KvCache.assemble). */
export function assembleEncoderRows(sources: readonly { states: EncoderStates; rows: readonly number[] }[]): EncoderStates {
  const { numPatches, hiddenSize } = sources[0].states;
  const per = numPatches * hiddenSize;
  const data = new Float32Array(sources.reduce((n, s) => n + s.rows.length, 0) * per); // [rows, patches, d]
  let out = 0;
  for (const { states, rows } of sources) {
    if (states.numPatches !== numPatches || states.hiddenSize !== hiddenSize) {
      throw new Error(`encoder states disagree: [${states.numPatches}, ${states.hiddenSize}] vs [${numPatches}, ${hiddenSize}]`);
    }
    for (const r of rows) data.set(states.data.subarray(r * per, (r + 1) * per), out++ * per);
  }
  return { data, numPatches, hiddenSize };
}
