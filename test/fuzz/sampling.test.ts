// Property-based fuzzing of option values into the sampler: any options resolveOptions
// accepts, on any logits (huge, tiny, -Infinity, ties), yield a token id in range; the
// ones it refuses are refused with INVALID_OPTIONS, never another error.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IrisError } from '../../src/contract/types.ts';
import { resolveOptions } from '../../text/sampling/options.ts';
import { createSampler } from '../../text/sampling/sampler.ts';

const RUNS = { numRuns: Number(process.env.IRIS_FUZZ_RUNS ?? 2000), interruptAfterTimeLimit: Number(process.env.IRIS_FUZZ_MS ?? 5_000) };

describe('fuzz: option values into the sampler', () => {
  it('accepted options always sample an id in range; refused ones are INVALID_OPTIONS', () => {
    const number = fc.oneof(fc.double(), fc.constantFrom(0, 1e-40, Number.MIN_VALUE, 1e-300, 0.5, 1, 9.99, 10), fc.integer({ min: -5, max: 100 }));
    const options = fc.record({
      temperature: number, topK: number, topP: number, minP: number, repetitionPenalty: number, noRepeatNgramSize: number,
      minNewTokens: fc.integer({ min: 0, max: 3 }), maxNewTokens: fc.constant(8), seed: fc.nat(), topLogprobs: fc.integer({ min: 0, max: 5 }),
    }, { requiredKeys: [] });
    const logit = fc.oneof(fc.float({ noNaN: true }), fc.constantFrom(-Infinity, 3.4e38, -3.4e38, 0, 1e-38));
    const logits = fc.array(logit, { minLength: 2, maxLength: 16 }).filter((l) => l.some((v) => v > -Infinity));
    fc.assert(
      fc.property(options, logits, fc.array(fc.nat(15), { maxLength: 6 }), (o, values, history) => {
        let resolved;
        try {
          resolved = resolveOptions(o);
        } catch (error) {
          expect(error instanceof IrisError && error.code === 'INVALID_OPTIONS', String(error)).toBe(true);
          return;
        }
        const sampler = createSampler(resolved, [1]);
        const { id } = sampler.next(Float32Array.from(values), { history, numGenerated: 0 });
        expect(Number.isInteger(id) && id >= 0 && id < values.length, `${JSON.stringify(o)} ${values} -> ${id}`).toBe(true);
      }),
      RUNS,
    );
  });
});
