// The batch runner gives each cache it stops holding back to the decoder's pool
// (KvCache.release): over steps where rows join and leave, the decode steps' K/V arrays
// are mostly reused once the batch stops growing, not made anew (the garbage the pool exists to avoid), and the rows'
// greedy tokens equal a runner that never released anything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchDecoder } from '../../src/engine/decoder-batch.ts';
import { BatchRunner } from '../../src/engine/batch-runner.ts';
import type { RunnerPlan } from '../../src/engine/plan.ts';
import { DEFAULT_MODEL_DIR, loadIrisModel, type IrisModel } from '../../src/model/load.ts';
import { argmax } from '../../text/sampling/processors.ts';
import type { ImageEmbedding } from '../../vision/encoder.ts';
import { decodeImage } from '../../vision/image.ts';
import { preprocessImage } from '../../vision/preprocess.ts';
import { syntheticImage } from '../helpers.ts';

describe('batch runner on shapes-base', () => {
  let model: IrisModel;
  let images: ImageEmbedding[];
  beforeAll(async () => {
    model = await loadIrisModel(DEFAULT_MODEL_DIR, { threads: 1 });
    const pixels = await Promise.all([1, 2, 3].map(async (seed) => preprocessImage(await decodeImage(await syntheticImage(64, 64, seed), { maxPixels: 1e6 }), model.folder.preprocessor)));
    images = await model.encoder.encode(pixels);
  });
  afterAll(async () => {
    await model?.release();
  });

  /** 32 rows arriving 2 per step, each decoding 6 tokens greedily then leaving (about 12 in the batch); every row's tokens. */
  async function run(runner: BatchRunner): Promise<Map<number, number[]>> {
    const prompt = Int32Array.from([model.folder.ids.decoderStart]);
    const tokens = new Map<number, number[]>();
    let live: number[] = [];
    for (let step = 0, next = 0; step < 22; step++) {
      const retire = live.filter((id) => tokens.get(id)!.length >= 6);
      live = live.filter((id) => !retire.includes(id));
      const joining = next < 32 ? [next++, next++] : [];
      const plan: RunnerPlan = {
        graph: 'plain',
        retire,
        decode: live.map((id) => ({ id, tokenId: tokens.get(id)!.at(-1)! })),
        prefill: joining.map((id) => ({ id, tokenIds: prompt, embedding: images[id % images.length] })),
      };
      const result = await runner.execute(plan);
      result.rowIds.forEach((id, r) => tokens.set(id, [...(tokens.get(id) ?? []), argmax(result.logits.subarray(r * result.vocabSize, (r + 1) * result.vocabSize))]));
      live = [...live, ...joining];
    }
    return tokens;
  }

  it('reuses the K/V arrays of the caches it replaces, with the same tokens as before the pool', async () => {
    expect(model.runner.fetchesNewColumnsOnly).toBe(true);
    const before = model.runner.kvArrays;
    const tokens = await run(new BatchRunner(new BatchDecoder(model.runner, model.folder.ids.pad)));
    const after = model.runner.kvArrays;
    const [reused, made] = [after.reused - before.reused, after.made - before.made];
    expect(reused + made).toBeGreaterThan(50);
    expect(reused).toBeGreaterThan(2 * made);
    // Each row alone, one at a time: the same greedy tokens.
    for (const id of [0, 13, 31]) {
      const alone = new BatchRunner(new BatchDecoder(model.runner, model.folder.ids.pad));
      const own: number[] = [];
      let result = await alone.execute({ graph: 'plain', retire: [], decode: [], prefill: [{ id, tokenIds: Int32Array.from([model.folder.ids.decoderStart]), embedding: images[id % images.length] }] });
      for (;;) {
        own.push(argmax(result.logits.subarray(0, result.vocabSize)));
        if (own.length === tokens.get(id)!.length) break;
        result = await alone.execute({ graph: 'plain', retire: [], decode: [{ id, tokenId: own.at(-1)! }], prefill: [] });
      }
      expect(own).toEqual(tokens.get(id));
    }
  });
});
