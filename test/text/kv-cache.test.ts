// The KV cache and runner driven step by step, as the continuous-batching engine will:
// rows joined mid-flight (different past lengths) and rows dropped keep their tokens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatherEncoderStates } from '../../fusion/conditioning.ts';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import { concatStates, decodeStep, prefillStep, selectStateRows, type RowsState } from '../../text/batch-inputs.ts';
import type { DecoderRunner, EncoderStates } from '../../text/decoder-runner.ts';
import { KvCache, detectCacheLayout } from '../../text/kv-cache.ts';
import { argmax } from '../../text/sampling/processors.ts';
import type { ImageEmbedding } from '../../vision/encoder.ts';
import { decodeImage } from '../../vision/image.ts';
import { preprocessImage } from '../../vision/preprocess.ts';
import { FIXTURES, syntheticImage } from '../helpers.ts';

interface Live {
  state: RowsState;
  cache: KvCache;
  encoder: EncoderStates;
  last: Int32Array; // [batch] newest token per row
  produced: number[][]; // per row
}

async function start(runner: DecoderRunner, prompts: Int32Array[], encoder: EncoderStates): Promise<Live> {
  const { step, state } = prefillStep(prompts, 0);
  const out = await runner.step({ tokens: step, encoderStates: encoder, cache: runner.emptyCache(prompts.length) });
  const last = Int32Array.from(prompts, (_, r) => argmax(out.logits.subarray(r * out.vocabSize, (r + 1) * out.vocabSize)));
  return { state, cache: out.cache, encoder, last, produced: Array.from(last, (id) => [id]) };
}

async function advance(runner: DecoderRunner, live: Live, steps: number): Promise<Live> {
  let cur = live;
  for (let s = 0; s < steps; s++) {
    const { step, state } = decodeStep(cur.state, cur.last);
    const out = await runner.step({ tokens: step, encoderStates: cur.encoder, cache: cur.cache });
    const last = Int32Array.from(cur.last, (_, r) => argmax(out.logits.subarray(r * out.vocabSize, (r + 1) * out.vocabSize)));
    cur = { state, cache: out.cache, encoder: cur.encoder, last, produced: cur.produced.map((p, r) => [...p, last[r]]) };
  }
  return cur;
}

function join(a: Live, b: Live): Live {
  const data = new Float32Array(a.encoder.data.length + b.encoder.data.length);
  data.set(a.encoder.data);
  data.set(b.encoder.data, a.encoder.data.length);
  return {
    state: concatStates([a.state, b.state]),
    cache: KvCache.concat([a.cache, b.cache]),
    encoder: { ...a.encoder, data },
    last: Int32Array.from([...a.last, ...b.last]),
    produced: [...a.produced, ...b.produced],
  };
}

for (const [name, dir] of Object.entries(FIXTURES)) {
  describe(`KV cache driven by hand: ${name}`, () => {
    let pipeline: ReferenceDecoder;
    let images: ImageEmbedding[];
    beforeAll(async () => {
      pipeline = await ReferenceDecoder.load({ modelDir: dir, threads: 1 });
      const pixels = await Promise.all([1, 2].map(async (seed) => preprocessImage(await decodeImage(await syntheticImage(80, 80, seed), { maxPixels: 1e6 }), pipeline.model.folder.preprocessor)));
      images = await pipeline.model.encoder.encode(pixels);
    });
    afterAll(() => pipeline.release());

    it('rows joined mid-flight with different past lengths continue exactly as alone', async () => {
      const { runner } = pipeline.model;
      const promptA = Int32Array.from([1, 4, 26, 27, 28, 8, 23, 14, 5]);
      const promptB = Int32Array.from([1, 6]);
      const aloneA = await advance(runner, await start(runner, [promptA], gatherEncoderStates(images, [0])), 10);
      const aloneB = await advance(runner, await start(runner, [promptB], gatherEncoderStates(images, [1])), 14);
      // A has run 3 steps, B 7 (pasts of 12 and 9 columns): join them and run the rest together
      const a = await advance(runner, await start(runner, [promptA], gatherEncoderStates(images, [0])), 3);
      const b = await advance(runner, await start(runner, [promptB], gatherEncoderStates(images, [1])), 7);
      expect(a.cache.pastLength).not.toBe(b.cache.pastLength);
      const joined = await advance(runner, join(a, b), 7);
      expect(joined.produced[0]).toEqual(aloneA.produced[0].slice(0, 11));
      expect(joined.produced[1]).toEqual(aloneB.produced[0]);
      expect(joined.cache.byteLength).toBeGreaterThan(a.cache.byteLength + b.cache.byteLength);
    });

    it('dropping a row leaves the others unchanged', async () => {
      const { runner } = pipeline.model;
      const prompts = [Int32Array.from([1]), Int32Array.from([1, 6, 13])];
      const both = await advance(runner, await start(runner, prompts, gatherEncoderStates(images, [0, 1])), 3);
      const kept: Live = { ...both, state: selectStateRows(both.state, [1]), cache: both.cache.selectRows([1]), encoder: gatherEncoderStates(images, [1]), last: both.last.slice(1), produced: [both.produced[1]] };
      const after = await advance(runner, kept, 5);
      const alone = await advance(runner, await start(runner, [prompts[1]], gatherEncoderStates(images, [1])), 8);
      expect(after.produced[0]).toEqual(alone.produced[0]);
    });
  });
}

describe('detectCacheLayout', () => {
  it('tells the two namings apart and reads the static head shape', () => {
    const shape = ['batch_size', 4, 'past', 8];
    const gpt2 = detectCacheLayout([0, 1].flatMap((i) => ['key', 'value'].map((kv) => ({ name: `past_key_values.${i}.${kv}`, shape, type: 'float32' }))));
    expect(gpt2).toEqual({ naming: 'self-only', numLayers: 2, numHeads: 4, headDim: 8, dtype: 'float32' });
    const encDec = detectCacheLayout(['decoder', 'encoder'].flatMap((part) => ['key', 'value'].map((kv) => ({ name: `past_key_values.0.${part}.${kv}`, shape, type: 'float16' }))));
    expect(encDec).toEqual({ naming: 'encoder-decoder', numLayers: 1, numHeads: 4, headDim: 8, dtype: 'float16' });
    expect(() => detectCacheLayout([{ name: 'input_ids' }])).toThrow(/no past_key_values/);
  });
});
