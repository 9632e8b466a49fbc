// Golden tests: the PyTorch reference's greedy ids and first-step logits (parity.json,
// recorded by training/export.py) reproduced through the engine the server runs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prefillStep } from '../../text/batch-inputs.ts';
import { createEngine } from '../../src/engine/create-engine.ts';
import type { Engine } from '../../src/engine/engine.ts';
import type { GenerationRequest } from '../../src/contract/types.ts';
import type { IrisModel } from '../../src/model/load.ts';
import { decodeImage } from '../../vision/image.ts';
import { preprocessImage } from '../../vision/preprocess.ts';
import { PARITY_FOLDERS, pngFromPixels, readParity, type ParityCase } from '../helpers.ts';

/** A parity case's prompt ids as the request a user would send ([start] or [start, <question>, ..., <answer>]). */
export function requestFor(generator: { model: IrisModel }, c: ParityCase, image: Uint8Array, maxNewTokens: number): GenerationRequest {
  const { tokenizer } = generator.model;
  const question = c.promptIds.length > 1 ? tokenizer.decode(c.promptIds.slice(2, -1)) : undefined;
  return question === undefined
    ? { task: 'caption', image, options: { maxNewTokens } }
    : { task: 'answer', image, question, options: { maxNewTokens } };
}

for (const [name, dir] of Object.entries(PARITY_FOLDERS).filter(([, d]) => existsSync(join(d, 'parity.json')))) {
  describe(`parity.json goldens: ${name}`, () => {
    let engine: Engine;
    const parity = readParity(dir);
    beforeAll(async () => {
      engine = await createEngine({ modelDir: dir, threads: 1 });
    });
    afterAll(() => engine.release());

    it('builds the reference prompt ids from the task templates', async () => {
      for (const c of parity.cases) {
        const image = await pngFromPixels(c.image, parity.imageSize);
        const request = requestFor(engine, c, image, 20);
        const result = await engine.generate(request);
        expect(result.usage.promptTokens).toBe(c.promptIds.length);
      }
    });

    it('reproduces greedy ids exactly', async () => {
      for (const c of parity.cases) {
        const image = await pngFromPixels(c.image, parity.imageSize);
        const result = await engine.generate(requestFor(engine, c, image, 20));
        const expected = c.greedyIds.filter((id) => id !== parity.eosTokenId);
        expect(result.tokens.map((t) => t.id)).toEqual(expected);
        expect(result.finishReason).toBe(c.greedyIds.includes(parity.eosTokenId) ? 'eos' : 'length');
      }
    });

    it('reproduces the first-step logits within 1e-4', async () => {
      const { model } = engine;
      for (const c of parity.cases) {
        const image = await pngFromPixels(c.image, parity.imageSize);
        const pixels = await preprocessImage(await decodeImage(image, { maxPixels: 1e6 }), model.folder.preprocessor);
        const [embedding] = await model.encoder.encode([pixels]);
        const { step } = prefillStep([Int32Array.from(c.promptIds)], model.folder.ids.pad);
        const out = await model.runner.step({ tokens: step, encoderStates: embedding, cache: model.runner.emptyCache(1) });
        const diff = Math.max(...c.firstLogits.map((v, i) => Math.abs(v - out.logits[i])));
        expect(diff).toBeLessThan(1e-4);
      }
    });
  });
}
