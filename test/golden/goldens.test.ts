// Golden ids recorded from real model folders by make-goldens.ts (one goldens.<model>.json
// per model), and the shipped model's captions of the sample scenes. Skipped while a
// model folder is absent (e.g. shapes-base before its training run has landed).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { ROOT } from '../helpers.ts';
import { SAMPLES, readSamples, type GoldenFile } from './make-goldens.ts';

const HERE = join(ROOT, 'test/golden');
const files = readdirSync(HERE).filter((f) => /^goldens\..+\.json$/.test(f));

for (const name of files) {
  const golden = JSON.parse(readFileSync(join(HERE, name), 'utf8')) as GoldenFile;
  const modelDir = join(ROOT, golden.model);
  const isPresent = existsSync(join(modelDir, 'onnx/decoder_model_merged.onnx'));
  describe.skipIf(!isPresent)(`goldens: ${golden.model}`, () => {
    let engine: Engine;
    beforeAll(async () => {
      engine = await createEngine({ modelDir, threads: 1 });
    });
    afterAll(() => engine.release());

    it(`reproduces all ${golden.cases.length} recorded greedy outputs token for token`, async () => {
      const requests = golden.cases.map((c) => ({ task: c.task, question: c.question, prompt: c.prompt, image: new Uint8Array(readFileSync(join(SAMPLES, c.image))) }));
      const results = await Promise.all(requests.map((r) => engine.generate(r)));
      results.forEach((r, i) => {
        expect({ case: golden.cases[i].image, ids: r.tokens.map((t) => t.id) }).toEqual({ case: golden.cases[i].image, ids: golden.cases[i].ids });
      });
    });
  });
}

const SHIPPED = join(ROOT, 'assets/models/shapes-base');
describe.skipIf(!existsSync(join(SHIPPED, 'onnx/decoder_model_merged.onnx')))('shapes-base on the sample scenes', () => {
  it('captions the samples correctly (labels come from the scene generator)', async () => {
    const engine = await createEngine({ modelDir: SHIPPED, threads: 1 });
    const samples = await readSamples();
    const results = await Promise.all(samples.map((s) => engine.generate({ task: 'caption', image: new Uint8Array(readFileSync(join(SAMPLES, s.image))) })));
    await engine.release();
    const correct = results.filter((r, i) => r.text === samples[i].caption).length;
    expect(correct).toBeGreaterThanOrEqual(samples.length - 1);
  });
});
