// Sampling statistics over many seeded draws, and each processor on hand-made logits.
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../../text/sampling/options.ts';
import {
  argmax, keepMinP, keepTopK, keepTopP, penalizeRepetition, repeatedNgramIds, softmax,
} from '../../../text/sampling/processors.ts';
import { createRng } from '../../../text/sampling/rng.ts';
import { createSampler } from '../../../text/sampling/sampler.ts';

const LOGITS = Float32Array.from([2.0, 1.5, 1.2, 0.9, 0.5, 0.1, -0.3, -1.0, -2.0, 0.7]);
const EOS = [8];

function draw(options: Parameters<typeof resolveOptions>[0], n: number, logits = LOGITS): number[] {
  const sampler = createSampler(resolveOptions(options), EOS);
  return Array.from({ length: n }, () => sampler.next(logits, { history: [], numGenerated: 1 }).id);
}

function topIds(logits: Float32Array, k: number): Set<number> {
  return new Set(Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, k));
}

describe('sampling statistics', () => {
  it('top-k never emits a token outside the top k', () => {
    for (const k of [1, 2, 3, 5]) {
      const allowed = topIds(LOGITS, k);
      const ids = draw({ topK: k, temperature: 1.5, seed: k }, 4000);
      expect(ids.every((id) => allowed.has(id))).toBe(true);
      expect(new Set(ids).size).toBe(k); // and does use all of them
    }
  });

  it("top-p frequencies match the renormalised nucleus", () => {
    const p = 0.8;
    const probs = softmax(LOGITS);
    const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]);
    const nucleus: number[] = [];
    let mass = 0;
    for (const id of order) {
      nucleus.push(id);
      mass += probs[id];
      if (mass >= p) break;
    }
    const n = 20000;
    const counts = new Map<number, number>();
    for (const id of draw({ topP: p, seed: 7 }, n)) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect([...counts.keys()].every((id) => nucleus.includes(id))).toBe(true);
    for (const id of nucleus) {
      const expected = probs[id] / mass;
      const sd = Math.sqrt((expected * (1 - expected)) / n);
      expect(Math.abs((counts.get(id) ?? 0) / n - expected)).toBeLessThan(4 * sd + 1e-3);
    }
  });

  it('plain sampling at temperature 1 matches the softmax', () => {
    const probs = softmax(LOGITS);
    const n = 20000;
    const ids = draw({ temperature: 1, seed: 11 }, n);
    for (let id = 0; id < LOGITS.length; id++) {
      const freq = ids.filter((x) => x === id).length / n;
      expect(Math.abs(freq - probs[id])).toBeLessThan(4 * Math.sqrt((probs[id] * (1 - probs[id])) / n) + 1e-3);
    }
  });

  it('the same seed gives the same draws; different seeds differ', () => {
    expect(draw({ temperature: 1, seed: 42 }, 200)).toEqual(draw({ temperature: 1, seed: 42 }, 200));
    expect(draw({ temperature: 1, seed: 42 }, 200)).not.toEqual(draw({ temperature: 1, seed: 43 }, 200));
  });

  it('greedy picks the first maximum and ignores warpers; a tiny temperature approaches greedy', () => {
    const tie = Float32Array.from([0, 3, 1, 3]);
    expect(draw({}, 5, tie)).toEqual([1, 1, 1, 1, 1]);
    expect(draw({ temperature: 0, topK: 3 }, 3)).toEqual([0, 0, 0]);
    expect(draw({ temperature: 0.01, seed: 1 }, 50).every((id) => id === 0)).toBe(true);
  });

  it('min new tokens suppresses EOS; logprobs report the raw distribution with top alternatives', () => {
    const eosFirst = Float32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 9, 0]);
    const sampler = createSampler(resolveOptions({ minNewTokens: 2, topLogprobs: 3 }), EOS);
    const early = sampler.next(eosFirst, { history: [], numGenerated: 1 });
    expect(early.id).not.toBe(8);
    const later = sampler.next(eosFirst, { history: [], numGenerated: 2 });
    expect(later.id).toBe(8);
    expect(later.top?.map((t) => t.id)[0]).toBe(8);
    expect(later.top).toHaveLength(3);
    const probs = softmax(eosFirst);
    expect(later.logprob).toBeCloseTo(Math.log(probs[8]), 10);
  });

  it("gives the chosen token's raw log-probability even when logprobs were not asked for (no alternatives then)", () => {
    const logits = Float32Array.from([0, 1, 2, 3, 0, 0, 0, 0, 0, 0]);
    const plain = createSampler(resolveOptions({ repetitionPenalty: 5 }), EOS).next(logits, { history: [3], numGenerated: 1 });
    const asked = createSampler(resolveOptions({ repetitionPenalty: 5, topLogprobs: 2 }), EOS).next(logits, { history: [3], numGenerated: 1 });
    expect(plain.id).toBe(2); // the penalty moved the argmax off 3
    expect(plain.top).toBeUndefined();
    expect(plain.logprob).toBeCloseTo(Math.log(softmax(logits)[2]), 12); // the unpenalised distribution
    expect(plain.logprob).toBe(asked.logprob);
  });
});

describe('logits processors', () => {
  it('keepTopK / keepTopP / keepMinP mask the right tokens and never mutate their input', () => {
    const input = LOGITS.slice();
    expect(keepTopK(input, 2).filter(Number.isFinite).length).toBe(2);
    expect(keepTopP(input, 1e-6).filter(Number.isFinite).length).toBe(1);
    const probs = softmax(input);
    const kept = keepMinP(input, 0.5);
    probs.forEach((q, i) => expect(Number.isFinite(kept[i])).toBe(q >= 0.5 * probs[0]));
    expect(input).toEqual(LOGITS);
  });

  it('repetition penalty lowers seen tokens on both sides of zero', () => {
    const out = penalizeRepetition(Float32Array.from([2, -2, 1]), [0, 1], 2);
    expect(Array.from(out)).toEqual([1, -4, 1]);
    expect(argmax(penalizeRepetition(Float32Array.from([2, 1.5]), [0], 2))).toBe(1);
  });

  it('no-repeat n-gram bans tokens that would complete a seen n-gram', () => {
    expect([...repeatedNgramIds([5, 6, 7, 5, 6], 3)]).toEqual([7]);
    expect([...repeatedNgramIds([5, 6, 7, 5, 6], 2)].sort()).toEqual([7]);
    expect([...repeatedNgramIds([1, 2, 3], 4)]).toEqual([]);
    expect([...repeatedNgramIds([4, 4, 4], 1)]).toEqual([4]);
  });

  it('the RNG is uniform enough and deterministic', () => {
    const rng = createRng(123);
    const xs = Array.from({ length: 10000 }, rng);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Math.abs(xs.reduce((a, b) => a + b, 0) / xs.length - 0.5)).toBeLessThan(0.01);
    expect(createRng(123)()).toBe(xs[0]);
  });
});

describe('tiny temperatures', () => {
  it('a temperature of 1e-40 (in range, but 1/T overflows float32) always draws the argmax, like greedy', () => {
    // Several positive logits before the largest: each overflowed to +Infinity, and the
    // NaN fallback's argmax took the first of them.
    const logits = Float32Array.from([0.5, 1.0, 0.2, 2.5, -1, 0.1]);
    for (const temperature of [1e-40, 1e-30, Number.MIN_VALUE]) {
      for (const extra of [{}, { topK: 3 }, { topP: 0.9 }, { minP: 0.1 }]) {
        const ids = draw({ temperature, seed: 7, ...extra }, 100, logits);
        expect(new Set(ids), `${temperature} ${JSON.stringify(extra)}`).toEqual(new Set([3]));
      }
    }
  });

  it('keeps ties at the maximum and every logit finite or -Infinity', () => {
    const tied = Float32Array.from([3, 1, 3, -2]);
    const ids = draw({ temperature: 1e-40, seed: 3 }, 400, tied);
    expect(new Set(ids)).toEqual(new Set([0, 2]));
  });
});
