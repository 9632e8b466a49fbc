// The joint-embedding family (LLaVA layout) on the engine: the tiny fixture's PyTorch
// greedy ids (parity.json) reproduced alone, in one continuous batch and with n-gram
// speculation; the same tokens as the reference decoder; image tokens counted in the
// prompt and never generated.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationRequest } from '../../src/contract/types.ts';
import { createEngine } from '../../src/engine/create-engine.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import { LLAVA_FIXTURE } from '../helpers.ts';

interface JointCase {
  task: 'caption' | 'answer' | 'generate';
  image_uint8_hwc: string;
  prompt_text: string;
  input_ids: number[];
  greedy_ids: number[];
}

const parity = JSON.parse(readFileSync(join(LLAVA_FIXTURE, 'parity.json'), 'utf8')) as { image_size: number; eos_token_id: number; image_token_id: number; max_new_tokens: number; cases: JointCase[] };

async function requestOf(c: JointCase): Promise<GenerationRequest> {
  const size = parity.image_size;
  const image = new Uint8Array(await sharp(Buffer.from(c.image_uint8_hwc, 'base64'), { raw: { width: size, height: size, channels: 3 } }).png().toBuffer());
  const options = { maxNewTokens: parity.max_new_tokens };
  if (c.task === 'answer') return { task: 'answer', image, question: /<question> (.*) <answer>/.exec(c.prompt_text)![1], options };
  if (c.task === 'generate') return { task: 'generate', image, prompt: c.prompt_text.replace('<image><s> ', ''), options };
  return { task: 'caption', image, options };
}

const expected = (c: JointCase): number[] => c.greedy_ids.filter((id) => id !== parity.eos_token_id);

describe('joint embedding (tiny-random-llava) on the engine', () => {
  let engine: Engine;
  let requests: GenerationRequest[];
  beforeAll(async () => {
    engine = await createEngine({ modelDir: LLAVA_FIXTURE, threads: 1 });
    requests = await Promise.all(parity.cases.map(requestOf));
  });
  afterAll(() => engine.release());

  it("reproduces PyTorch's greedy ids for every case alone, with the image tokens in the prompt", async () => {
    for (const [i, c] of parity.cases.entries()) {
      const result = await engine.generate(requests[i]);
      expect(result.tokens.map((t) => t.id), c.task).toEqual(expected(c));
      expect(result.usage.promptTokens).toBe(c.input_ids.length);
      expect(result.tokens.some((t) => t.id === parity.image_token_id)).toBe(false);
    }
  });

  it('gives the same ids in one continuous batch of rows with different prompt lengths, and with n-gram drafts', async () => {
    const batched = await Promise.all(requests.map((r) => engine.generate(r)));
    batched.forEach((r, i) => expect(r.tokens.map((t) => t.id)).toEqual(expected(parity.cases[i])));
    const drafted = await Promise.all(requests.map((r) => engine.generate({ ...r, options: { ...r.options, speculative: 'ngram' } })));
    drafted.forEach((r, i) => expect(r.tokens.map((t) => t.id)).toEqual(expected(parity.cases[i])));
  });

  it('gives attention maps over the image tokens (a grid of them) with the share that went to the image, tokens unchanged', async () => {
    const results = await Promise.all(requests.map((r) => engine.generate({ ...r, options: { ...r.options, attention: true } })));
    results.forEach((r, i) => {
      expect(r.tokens.map((t) => t.id)).toEqual(expected(parity.cases[i]));
      for (const { attention } of r.tokens) {
        expect([attention!.rows, attention!.cols]).toEqual([4, 4]); // 16 image tokens
        expect(attention!.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        expect(attention!.imageShare).toBeGreaterThan(0);
        expect(attention!.imageShare).toBeLessThanOrEqual(1 + 1e-6);
      }
    });
  });

  it('image-prefix caching: later questions about the same image skip its prefill, with the same tokens', async () => {
    const cold = await createEngine({ modelDir: LLAVA_FIXTURE, threads: 1, prefixCacheTokens: 0 });
    const warm = await createEngine({ modelDir: LLAVA_FIXTURE, threads: 1 });
    try {
      // every case twice, in two waves: the second wave's images are all cached
      const waves = [requests, [...requests].reverse()];
      for (const [w, wave] of waves.entries()) {
        const [plain, cached] = await Promise.all([Promise.all(wave.map((r) => cold.generate(r))), Promise.all(wave.map((r) => warm.generate(r)))]);
        cached.forEach((r, i) => {
          expect(r.tokens.map((t) => t.id)).toEqual(plain[i].tokens.map((t) => t.id));
          if (w === 1) expect(r.timings.prefixCached).toBe(true);
          expect(plain[i].timings.prefixCached).toBe(false);
        });
      }
      const stats = warm.stats().prefixCache!;
      const distinct = new Set(parity.cases.map((c) => c.image_uint8_hwc)).size;
      expect(stats.misses).toBeLessThanOrEqual(distinct + requests.length); // a wave's first sight of an image may race its twins
      expect(stats.hits).toBeGreaterThanOrEqual(requests.length);
      expect(stats.cachedTokens).toBe(distinct * parity.cases[0].input_ids.filter((id) => id === parity.image_token_id).length);
      expect(cold.stats().prefixCache).toBeUndefined();
    } finally {
      await Promise.all([cold.release(), warm.release()]);
    }
  });

  it('matches the reference decoder, with the KV cache and recomputing', async () => {
    for (const useKvCache of [true, false]) {
      const reference = await ReferenceDecoder.load({ modelDir: LLAVA_FIXTURE, threads: 1, useKvCache });
      try {
        const results = await reference.generateBatch(requests);
        results.forEach((r, i) => {
          if (r instanceof Error) throw r;
          expect(r.tokens.map((t) => t.id)).toEqual(expected(parity.cases[i]));
        });
      } finally {
        await reference.release();
      }
    }
  });
});
