// The decoder batch driven by hand on the tiny fixtures, as the runner and the draft model
// drive it: rows joined mid-flight (different past lengths), rows dropped, drafts verified
// and rolled back all keep each row's tokens exactly as it decodes alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assemble, BatchDecoder, keepRows, rollBack, type BatchStep, type DecoderBatch } from '../../src/engine/decoder-batch.ts';
import { loadIrisModel, type IrisModel } from '../../src/model/load.ts';
import { argmax } from '../../text/sampling/processors.ts';
import type { ImageEmbedding } from '../../vision/encoder.ts';
import { decodeImage } from '../../vision/image.ts';
import { preprocessImage } from '../../vision/preprocess.ts';
import { FIXTURES, syntheticImage } from '../helpers.ts';

/** Greedy tokens of each row of a step, by row id. */
function picks(step: BatchStep): Map<number, number> {
  const { batch, logits, vocabSize } = step;
  return new Map(batch.ids.map((id, r) => [id, argmax(logits.subarray(r * vocabSize, (r + 1) * vocabSize))]));
}

/** `steps` greedy decode steps; every row's produced tokens, by id. */
async function advance(decoder: BatchDecoder, start: BatchStep, steps: number, produced = new Map<number, number[]>()): Promise<{ batch: DecoderBatch; produced: Map<number, number[]> }> {
  let step = start;
  for (let s = 0; ; s++) {
    for (const [id, token] of picks(step)) produced.set(id, [...(produced.get(id) ?? []), token]);
    if (s === steps) return { batch: step.batch, produced };
    step = await decoder.decode(step.batch, Int32Array.from(step.batch.ids, (id) => produced.get(id)!.at(-1)!));
  }
}

for (const [name, dir] of Object.entries(FIXTURES)) {
  describe(`decoder batch: ${name}`, () => {
    let model: IrisModel;
    let decoder: BatchDecoder;
    let images: ImageEmbedding[];
    const promptA = Int32Array.from([1, 4, 26, 27, 28, 8, 23, 14, 5]);
    const promptB = Int32Array.from([1, 6]);
    beforeAll(async () => {
      model = await loadIrisModel(dir, { threads: 1 });
      decoder = new BatchDecoder(model.runner, model.folder.ids.pad);
      const pixels = await Promise.all([1, 2].map(async (seed) => preprocessImage(await decodeImage(await syntheticImage(80, 80, seed), { maxPixels: 1e6 }), model.folder.preprocessor)));
      images = await model.encoder.encode(pixels);
    });
    afterAll(() => model.release());

    const alone = async (id: number, prompt: Int32Array, steps: number): Promise<number[]> =>
      (await advance(decoder, await decoder.prefill([{ id, tokenIds: prompt, embedding: images[id] }]), steps)).produced.get(id)!;

    it('rows joined mid-flight with different past lengths continue exactly as alone', async () => {
      const [aloneA, aloneB] = [await alone(0, promptA, 10), await alone(1, promptB, 14)];
      // A has run 3 steps, B 7 (pasts of 12 and 9 columns): join them and run the rest together
      const a = await advance(decoder, await decoder.prefill([{ id: 0, tokenIds: promptA, embedding: images[0] }]), 3);
      const b = await advance(decoder, await decoder.prefill([{ id: 1, tokenIds: promptB, embedding: images[1] }]), 7);
      expect(a.batch.cache.pastLength).not.toBe(b.batch.cache.pastLength);
      const joined = assemble([keepRows(a.batch, () => true)!, keepRows(b.batch, () => true)!]);
      expect(joined.ids).toEqual([0, 1]);
      const produced = new Map([...a.produced, ...b.produced]);
      const step = await decoder.decode(joined, Int32Array.from(joined.ids, (id) => produced.get(id)!.at(-1)!));
      const after = await advance(decoder, step, 6, produced);
      expect(after.produced.get(0)).toEqual(aloneA.slice(0, 11));
      expect(after.produced.get(1)).toEqual(aloneB);
    });

    it('dropping a row (and the columns only it attended) leaves the others unchanged', async () => {
      const both = await advance(decoder, await decoder.prefill([0, 1].map((id) => ({ id, tokenIds: id === 0 ? promptA : promptB, embedding: images[id] }))), 3);
      const source = keepRows(both.batch, (id) => id === 1)!;
      expect(source.fromColumn).toBeGreaterThan(0); // B's prompt is shorter: A's leading columns go
      const kept = assemble([source]);
      expect(kept.cache.pastLength).toBe(both.batch.cache.pastLength - source.fromColumn);
      const step = await decoder.decode(kept, Int32Array.from([both.produced.get(1)!.at(-1)!]));
      const after = await advance(decoder, step, 4, new Map([[1, both.produced.get(1)!]]));
      expect(after.produced.get(1)).toEqual(await alone(1, promptB, 8));
    });

    it('verifying drafts gives the logits plain steps give, and rolling back rejected ones resumes exactly', async () => {
      const expected = await alone(0, promptA, 6); // greedy tokens t0..t6
      const start = await decoder.prefill([{ id: 0, tokenIds: promptA, embedding: images[0] }]);
      // Feed t0 with drafts [t1, t2, wrong]: the verify logits at each position predict t1, t2, t3.
      const wrong = (expected[3] + 1) % start.vocabSize;
      const verified = await decoder.verify(start.batch, [{ tokenId: expected[0], draftIds: Int32Array.from([expected[1], expected[2], wrong]) }]);
      expect(Array.from(verified.numPositions)).toEqual([4]);
      const predicted = [0, 1, 2].map((j) => argmax(verified.logits.subarray(j * verified.vocabSize, (j + 1) * verified.vocabSize)));
      expect(predicted).toEqual(expected.slice(1, 4));
      // The wrong draft was rejected: drop it, then continue from t3 as plain decoding would.
      const rolled = rollBack(verified.batch, [1]);
      expect(rolled.cache.pastLength).toBe(verified.batch.cache.pastLength - 1);
      const step = await decoder.decode(rolled, Int32Array.from([expected[3]]));
      const after = await advance(decoder, step, 2, new Map([[0, expected.slice(0, 4)]]));
      expect(after.produced.get(0)).toEqual(expected.slice(0, 7));
    });
  });
}
