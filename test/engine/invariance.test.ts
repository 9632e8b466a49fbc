// Batching changes nothing but speed: a request's greedy tokens are the same alone (the
// single-request pipeline) and inside continuously batched steps, whatever the arrival
// order, with rows joining mid-flight, leaving early, and being preempted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import type { GenerationRequest, GenerationResult } from '../../src/contract/types.ts';
import { createRng } from '../../text/sampling/rng.ts';
import { FIXTURES } from '../helpers.ts';
import { harness, shuffled, workload, type Harness } from './support.ts';

function expectSame(batched: GenerationResult | Error, alone: GenerationResult): void {
  if (batched instanceof Error) throw batched;
  expect(batched.tokens.map((t) => t.id)).toEqual(alone.tokens.map((t) => t.id));
  expect(batched.text).toBe(alone.text);
  expect(batched.finishReason).toBe(alone.finishReason);
  batched.tokens.forEach((t, j) => expect(Math.abs(t.logprob! - alone.tokens[j].logprob!)).toBeLessThan(1e-4));
}

for (const [name, dir] of Object.entries(FIXTURES)) {
  describe(`engine invariance: ${name}`, () => {
    let pipeline: ReferenceDecoder;
    let requests: GenerationRequest[];
    let alone: GenerationResult[];
    beforeAll(async () => {
      pipeline = await ReferenceDecoder.load({ modelDir: dir, threads: 1 });
      requests = await workload(12);
      alone = [];
      for (const r of requests) alone.push(await pipeline.generate(r));
    });
    afterAll(() => pipeline.release());

    describe('with room for everyone', () => {
      let h: Harness;
      beforeAll(async () => {
        h = await harness({ modelDir: dir, maxBatchSize: 8 });
      });
      afterAll(() => h.engine.release());

      for (const seed of [1, 2, 3]) {
        it(`greedy tokens equal the single-request pipeline's (arrival order seed ${seed})`, async () => {
          const order = shuffled(requests.map((_, i) => i), seed);
          const rng = createRng(seed * 101);
          const offsets = order.map(() => Math.floor(rng() * 20));
          const before = h.steps.length;
          const outcomes = await h.arrive(order.map((i) => requests[i]), offsets);
          order.forEach((i, k) => expectSame(outcomes[k], alone[i]));
          const steps = h.steps.slice(before);
          expect(steps.some((s) => s.numDecode > 0 && s.numPrefill > 0)).toBe(true); // joined mid-flight
          expect(Math.max(...steps.map((s) => s.numDecode + s.numPrefill))).toBeGreaterThan(1);
          for (const s of steps) expect(s.kvCachedTokens).toBe(s.kvScheduledTokens); // the budget counts what the cache holds
          expect(h.engine.stats()).toMatchObject({ queueDepth: 0, batchSize: 0, kvUsedTokens: 0 });
        });
      }

      it('a seeded sampled request gives the same text alone and batched', async () => {
        const sampled = requests.slice(0, 4).map((r, i) => ({ ...r, options: { ...r.options, temperature: 1.3, topK: 20, topP: 0.95, seed: 40 + i } }));
        const reference: GenerationResult[] = [];
        for (const r of sampled) reference.push(await pipeline.generate(r));
        const mixed = [...sampled, ...requests.slice(4, 10)];
        const order = shuffled(mixed.map((_, i) => i), 9);
        const outcomes = await h.arrive(order.map((i) => mixed[i]), order.map((_, k) => k % 4));
        order.forEach((i, k) => (i < sampled.length ? expectSame(outcomes[k], reference[i]) : expectSame(outcomes[k], alone[4 + i - sampled.length])));
      });
    });

    it('under a tight KV budget rows are preempted and recomputed, with the same tokens', async () => {
      // Rows that must grow to 25 new tokens; the budget fits three rows at the model's longest (64 positions + cross-attention rows).
      const capacity = 3 * (64 + (name === 'gpt2' ? 0 : 64));
      const long = requests.slice(0, 8).map((r) => ({ ...r, options: { ...r.options, minNewTokens: 25, maxNewTokens: 25 } }));
      const reference: GenerationResult[] = [];
      for (const r of long) reference.push(await pipeline.generate(r));
      const h = await harness({ modelDir: dir, maxBatchSize: 8, kvCacheTokens: capacity });
      try {
        const outcomes = await h.arrive(long, long.map((_, i) => (i < 6 ? 0 : 3 * i)));
        long.forEach((_, i) => expectSame(outcomes[i], reference[i]));
        expect(h.steps.some((s) => s.numPreempted > 0)).toBe(true);
        for (const s of h.steps) {
          expect(s.kvScheduledTokens).toBeLessThanOrEqual(capacity);
          expect(s.kvCachedTokens).toBe(s.kvScheduledTokens);
        }
      } finally {
        await h.engine.release();
      }
    });

    it('with batching off (one at a time) the tokens are the same too', async () => {
      const h = await harness({ modelDir: dir, maxBatchSize: 1 });
      try {
        const outcomes = await h.arrive(requests.slice(0, 5), [0, 0, 0, 0, 0]);
        outcomes.forEach((o, i) => expectSame(o, alone[i]));
        expect(Math.max(...h.steps.map((s) => s.numDecode + s.numPrefill))).toBe(1);
      } finally {
        await h.engine.release();
      }
    });
  });
}
