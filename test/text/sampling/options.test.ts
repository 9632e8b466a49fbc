// Generation options: defaults, ranges and their stable error codes.
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_NEW_TOKENS, resolveOptions } from '../../../text/sampling/options.ts';
import { IrisError, type GenerationOptions } from '../../../src/contract/types.ts';

function rejection(options: unknown): IrisError {
  try {
    resolveOptions(options as GenerationOptions);
  } catch (err) {
    return err as IrisError;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('resolveOptions', () => {
  it('takes the speculative mode in either spelling (CLI lower case, GraphQL upper case) and refuses others', () => {
    expect(resolveOptions({ speculative: 'DRAFT' as never }).speculative).toBe('draft');
    expect(resolveOptions({ speculative: 'ngram' }).speculative).toBe('ngram');
    expect(resolveOptions({ speculative: "MEDUSA" as never }).speculative).toBe("medusa");
    expect(() => resolveOptions({ speculative: 'fast' as never })).toThrow(/speculative must be one of off, draft, ngram, medusa, got "fast"/);
  });

  it('defaults to greedy with a bounded length and a reported seed', () => {
    const o = resolveOptions(undefined);
    expect(o.isSampling).toBe(false);
    expect(o.maxNewTokens).toBe(DEFAULT_MAX_NEW_TOKENS);
    expect(Number.isInteger(o.seed)).toBe(true);
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('turns sampling on with temperature > 0 or any warper, and off with temperature 0', () => {
    expect(resolveOptions({ temperature: 0.7 }).isSampling).toBe(true);
    expect(resolveOptions({ topP: 0.9 }).isSampling).toBe(true);
    expect(resolveOptions({ temperature: 0, topK: 5 }).isSampling).toBe(false);
    expect(resolveOptions({ topLogprobs: 2 }).logprobs).toBe(true);
  });

  it.each([
    [{ maxNewTokens: 0 }, /maxNewTokens must be an integer from 1 to 4096, got 0/],
    [{ maxNewTokens: 2.5 }, /maxNewTokens/],
    [{ minNewTokens: 9, maxNewTokens: 4 }, /minNewTokens must be an integer from 0 to 4/],
    [{ temperature: -1 }, /temperature must be a number from 0 to 10/],
    [{ temperature: Number.NaN }, /temperature/],
    [{ topK: 0 }, /topK must be an integer from 1/],
    [{ topP: 0 }, /topP must be a number greater than 0 and at most 1/],
    [{ topP: 1.5 }, /topP/],
    [{ minP: 2 }, /minP must be a number from 0 to 1/],
    [{ repetitionPenalty: 0 }, /repetitionPenalty must be a number greater than 0 and at most 10/],
    [{ noRepeatNgramSize: -1 }, /noRepeatNgramSize must be an integer from 0 to 64/],
    [{ seed: -3 }, /seed must be an integer from 0 to 4294967295/],
    [{ stop: [''] }, /stop must be a list of at most 8 non-empty strings/],
    [{ stop: 'x' }, /stop/],
    [{ logprobs: 'yes' }, /logprobs must be true or false/],
    [{ topLogprobs: 50 }, /topLogprobs must be an integer from 0 to 20/],
    [{ max_tokens: 3 }, /unknown option 'max_tokens'/],
  ])('rejects %j', (options, message) => {
    const err = rejection(options);
    expect(err).toBeInstanceOf(IrisError);
    expect(err.code).toBe('INVALID_OPTIONS');
    expect(err.message).toMatch(message);
  });

  it('treats null as unset (GraphQL sends nulls)', () => {
    expect(resolveOptions({ temperature: null, topK: null } as unknown as GenerationOptions).isSampling).toBe(false);
  });
});
