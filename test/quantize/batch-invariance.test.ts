// q8 is batch-invariant: its activations are quantized per row (per token), so a request's
// greedy tokens are the same decoded alone and decoded in a batch with other images and
// prompts, on a tiny fixture and on the shipped model (both quantized into a temp copy).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.ts';
import { onnxFiles } from '../../src/model/files.ts';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import type { GenerationRequest, GenerationResult } from '../../src/contract/types.ts';
import { FIXTURES, SHIPPED_MODEL, isShippedModelPresent, syntheticImage } from '../helpers.ts';
import { quantizedCopy, type QuantizedCopy } from './support.ts';

const FOLDERS: Record<string, string> = isShippedModelPresent ? { encoderDecoder: FIXTURES.encoderDecoder, shipped: SHIPPED_MODEL } : { encoderDecoder: FIXTURES.encoderDecoder };

/** Six different images, captions and questions with different lengths. */
async function mixedRequests(size: number): Promise<GenerationRequest[]> {
  const images = await Promise.all([11, 12, 13, 14, 15, 16].map((seed) => syntheticImage(size, size, seed)));
  return images.map((image, i): GenerationRequest =>
    i % 2 === 0
      ? { task: 'caption', image, options: { maxNewTokens: 8 + i, logprobs: true } }
      : { task: 'answer', image, question: i === 1 ? 'what color is the circle?' : 'how many shapes are there?', options: { maxNewTokens: 5 + i, logprobs: true } });
}

function ids(r: GenerationResult | Error): number[] {
  if (r instanceof Error) throw r;
  return r.tokens.map((t) => t.id);
}

/**
 * Greedy ids rarely flip, so the logprobs are compared too: per-tensor quantization moved
 * them by 7e-5 to 2e-3 with batch-mates (measured); per-row leaves only float summation-order noise.
 */
function expectSameLogprobs(batched: (GenerationResult | Error)[], reference: GenerationResult[]): void {
  batched.forEach((r, i) => {
    if (r instanceof Error) throw r;
    r.tokens.forEach((t, j) => expect(Math.abs(t.logprob! - reference[i].tokens[j].logprob!)).toBeLessThan(LOGPROB_TOLERANCE));
  });
}

const LOGPROB_TOLERANCE = 1e-5;

for (const [name, dir] of Object.entries(FOLDERS)) {
  describe(`q8 batch invariance on ${name}`, () => {
    let copy: QuantizedCopy;
    let pipeline: ReferenceDecoder;
    let requests: GenerationRequest[];
    let alone: number[][];
    let results: GenerationResult[];
    beforeAll(async () => {
      copy = await quantizedCopy(dir);
      pipeline = await ReferenceDecoder.load({ modelDir: copy.dir, threads: 1, ...onnxFiles('q8') });
      requests = await mixedRequests(64);
      results = [];
      for (const r of requests) results.push(await pipeline.generate(r));
      alone = results.map(ids);
    }, 180_000);
    afterAll(async () => {
      await pipeline?.release();
      await copy?.remove();
    });

    it('generateBatch gives each request the tokens it gets alone, whatever its batch-mates', async () => {
      const together = await pipeline.generateBatch(requests);
      expect(together.map(ids)).toEqual(alone);
      expectSameLogprobs(together, results);
      const reversed = await pipeline.generateBatch([...requests].reverse());
      expect(reversed.map(ids).reverse()).toEqual(alone);
      const pair = await pipeline.generateBatch([requests[0], requests[3]]);
      expect(pair.map(ids)).toEqual([alone[0], alone[3]]);
    });

    it('the continuous-batching engine gives the same tokens as the pipeline alone', async () => {
      const engine = await createEngine({ modelDir: copy.dir, threads: 1, maxBatchSize: 4, ...onnxFiles('q8') });
      try {
        const together = await Promise.all(requests.map((r) => engine.generate(r)));
        expect(together.map(ids)).toEqual(alone);
        expectSameLogprobs(together, results);
      } finally {
        await engine.release();
      }
    });
  });
}
