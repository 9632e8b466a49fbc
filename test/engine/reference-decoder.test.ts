// The decode loop's invariants on both cache namings: the KV cache changes nothing but
// speed, and batching rows (left padding, retiring finished rows) changes nothing at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import type { GenerationRequest } from '../../src/contract/types.ts';
import { FIXTURES, syntheticImage } from '../helpers.ts';

const QUESTIONS = ['what color is the circle?', 'how many shapes are there?', 'is there a large red square?', 'what shape is the blue object?'];

async function requests(): Promise<GenerationRequest[]> {
  const images = await Promise.all([0, 1, 2].map((s) => syntheticImage(96 + 16 * s, 96 + 16 * s, s + 1)));
  return [
    { task: 'caption', image: images[0], options: { maxNewTokens: 24, logprobs: true } },
    { task: 'answer', image: images[1], question: QUESTIONS[0], options: { maxNewTokens: 7, logprobs: true } },
    { task: 'generate', image: images[2], prompt: 'a large red', options: { maxNewTokens: 16, logprobs: true } },
    { task: 'answer', image: images[0], question: QUESTIONS[2], options: { maxNewTokens: 3, logprobs: true } },
    { task: 'generate', image: images[1], prompt: '', options: { maxNewTokens: 11, logprobs: true } },
  ];
}

for (const [name, dir] of Object.entries(FIXTURES)) {
  describe(`decoding: ${name}`, () => {
    let cached: ReferenceDecoder;
    let recompute: ReferenceDecoder;
    beforeAll(async () => {
      [cached, recompute] = await Promise.all([
        ReferenceDecoder.load({ modelDir: dir, threads: 1 }),
        ReferenceDecoder.load({ modelDir: dir, threads: 1, useKvCache: false }),
      ]);
    });
    afterAll(async () => {
      await Promise.all([cached.release(), recompute.release()]);
    });

    it('KV-cached decoding equals recomputing the full sequence at every step', async () => {
      for (const request of await requests()) {
        const [a, b] = [await cached.generate(request), await recompute.generate(request)];
        expect(a.tokens.map((t) => t.id)).toEqual(b.tokens.map((t) => t.id));
        a.tokens.forEach((t, i) => expect(Math.abs(t.logprob! - b.tokens[i].logprob!)).toBeLessThan(1e-4));
      }
    });

    it('a batch of rows with different prompt lengths equals each row alone', async () => {
      const all = await requests();
      const batched = await cached.generateBatch(all);
      for (const [i, request] of all.entries()) {
        const alone = await cached.generate(request);
        const row = batched[i];
        if (row instanceof Error) throw row;
        expect(row.tokens.map((t) => t.id)).toEqual(alone.tokens.map((t) => t.id));
        expect(row.text).toBe(alone.text);
        expect(row.finishReason).toBe(alone.finishReason);
        row.tokens.forEach((t, j) => expect(Math.abs(t.logprob! - alone.tokens[j].logprob!)).toBeLessThan(1e-4));
      }
    });

    it('streams deltas whose concatenation is the final text', async () => {
      const [request] = await requests();
      const deltas: string[] = [];
      const result = await cached.generate(request, { onDelta: (d) => deltas.push(d.text) });
      expect(deltas.join('')).toBe(result.text);
      expect(deltas.length).toBe(result.tokens.length);
    });

    it('stops between steps when the signal aborts, returning the partial text', async () => {
      const [request] = await requests();
      const controller = new AbortController();
      let seen = 0;
      const result = await cached.generate(request, {
        signal: controller.signal,
        onDelta: () => (++seen === 3 ? controller.abort() : undefined),
      });
      expect(result.finishReason).toBe('cancelled');
      expect(result.tokens.length).toBe(3);
      await expect(cached.generate(request, { signal: controller.signal })).rejects.toMatchObject({ code: 'CANCELLED' });
    });

    it('caps max new tokens at the position limit and rejects prompts that fill it', async () => {
      const [request] = await requests();
      const limit = cached.model.folder.maxPositions!;
      const long = await cached.generate({ ...request, options: { maxNewTokens: 4096 } });
      expect(long.usage.promptTokens + long.usage.completionTokens).toBeLessThanOrEqual(limit);
      const prompt = Array.from({ length: limit }, () => 'red').join(' ');
      await expect(cached.generate({ ...request, task: 'generate', prompt })).rejects.toMatchObject({ code: 'PROMPT_TOO_LONG' });
    });
  });
}
