// The q8 and fp16 variants of both fixtures run through Iris's own pipeline: first-step
// logits close to fp32's, and the same greedy ids wherever fp32's own top-2 margin is
// wider than the variant's measured error could bridge.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onnxFiles } from '../../src/model/files.ts';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import type { GenerationRequest } from '../../src/contract/types.ts';
import { prefillStep } from '../../text/batch-inputs.ts';
import { decodeImage } from '../../vision/image.ts';
import { preprocessImage } from '../../vision/preprocess.ts';
import { FIXTURES, pngFromPixels, readParity, type ParityCase } from '../helpers.ts';
import { quantizedCopy, type QuantizedCopy } from './support.ts';

/**
 * Largest |logit - fp32 logit|, as a fraction of the fp32 logits' range (max - min).
 * q8: weights carry ≤ 0.5/127 relative error per column and activations ≤ 0.5/255 per
 * row, through ~10 chained matmuls; measured ≈ 1.7 % on these random weights, so 4 %.
 * fp16: 11-bit significands, ≈ 5e-4 relative per op; measured 6.4e-4, so 3e-3.
 */
const TOLERANCE = { q8: 0.04, fp16: 3e-3 } as const;

async function firstLogits(pipeline: ReferenceDecoder, c: ParityCase, image: Uint8Array): Promise<Float32Array> {
  const { model } = pipeline;
  const pixels = await preprocessImage(await decodeImage(image, { maxPixels: 1e6 }), model.folder.preprocessor);
  const [embedding] = await model.encoder.encode([pixels]);
  const { step } = prefillStep([Int32Array.from(c.promptIds)], model.folder.ids.pad);
  return (await model.runner.step({ tokens: step, encoderStates: embedding, cache: model.runner.emptyCache(1) })).logits;
}

function request(pipeline: ReferenceDecoder, c: ParityCase, image: Uint8Array): GenerationRequest {
  const question = c.promptIds.length > 1 ? pipeline.model.tokenizer.decode(c.promptIds.slice(2, -1)) : undefined;
  const options = { maxNewTokens: 12, logprobs: true, topLogprobs: 2 };
  return question === undefined ? { task: 'caption', image, options } : { task: 'answer', image, question, options };
}

for (const [name, fixture] of Object.entries(FIXTURES)) {
  describe(`q8 and fp16 variants of ${name} through the pipeline`, () => {
    let copy: QuantizedCopy;
    const pipelines: Partial<Record<'fp32' | 'q8' | 'fp16', ReferenceDecoder>> = {};
    const parity = readParity(fixture);
    let images: Uint8Array[];
    beforeAll(async () => {
      copy = await quantizedCopy(fixture);
      for (const dtype of ['fp32', 'q8', 'fp16'] as const) pipelines[dtype] = await ReferenceDecoder.load({ modelDir: copy.dir, threads: 1, ...onnxFiles(dtype) });
      images = await Promise.all(parity.cases.map((c) => pngFromPixels(c.image, parity.imageSize)));
    });
    afterAll(async () => {
      await Promise.all(Object.values(pipelines).map((p) => p.release()));
      await copy.remove();
    });

    for (const dtype of ['q8', 'fp16'] as const) {
      it(`${dtype}: first-step logits within ${TOLERANCE[dtype] * 100} % of the fp32 range`, async () => {
        for (const [i, c] of parity.cases.entries()) {
          const [ref, got] = [await firstLogits(pipelines.fp32!, c, images[i]), await firstLogits(pipelines[dtype]!, c, images[i])];
          const range = Math.max(...ref) - Math.min(...ref);
          const worst = Math.max(...Array.from(ref, (v, j) => Math.abs(v - got[j])));
          expect(worst / range).toBeLessThan(TOLERANCE[dtype]);
          expect(worst / range).toBeGreaterThan(0); // the variant really ran
        }
      });

      it(`${dtype}: same greedy ids as fp32 up to the first step whose fp32 top-2 margin is not comfortable`, async () => {
        let comparedSteps = 0;
        for (const [i, c] of parity.cases.entries()) {
          const ref = await pipelines.fp32!.generate(request(pipelines.fp32!, c, images[i]));
          const got = await pipelines[dtype]!.generate(request(pipelines[dtype]!, c, images[i]));
          const logits = await firstLogits(pipelines.fp32!, c, images[i]);
          // A logit error of at most e moves a top-2 gap by at most 2e; past a narrower gap
          // the variant may legitimately pick the other token, and everything after differs.
          const minGap = 2 * TOLERANCE[dtype] * (Math.max(...logits) - Math.min(...logits));
          for (const [step, token] of ref.tokens.entries()) {
            const gap = token.top!.length < 2 ? Infinity : token.top![0].logprob - token.top![1].logprob;
            if (gap <= minGap) break;
            expect(got.tokens[step]?.id).toBe(token.id);
            comparedSteps++;
          }
        }
        expect(comparedSteps).toBeGreaterThan(0);
        console.log(`${name} ${dtype}: ${comparedSteps} greedy steps with comfortable fp32 margins compared`);
      });
    }
  });
}
