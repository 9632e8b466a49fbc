// A request as a decoder row: options capped to the model's positions.
import { describe, expect, it } from 'vitest';
import { capToPositions } from '../../src/engine/row-spec.ts';
import { resolveOptions } from '../../text/sampling/options.ts';

describe('capToPositions', () => {
  it('caps max and min new tokens to the room left, and rejects prompts with no room', () => {
    const o = resolveOptions({ maxNewTokens: 100, minNewTokens: 50 });
    expect(capToPositions(o, 10, 64)).toMatchObject({ maxNewTokens: 54, minNewTokens: 50 });
    expect(capToPositions(o, 60, 64)).toMatchObject({ maxNewTokens: 4, minNewTokens: 4 });
    expect(capToPositions(o, 10, undefined).maxNewTokens).toBe(100);
    expect(() => capToPositions(o, 64, 64)).toThrow(expect.objectContaining({ code: 'PROMPT_TOO_LONG' }));
  });

  it('takes a speculative mode (undefined: the engine decides) and rejects others with INVALID_OPTIONS', () => {
    expect(resolveOptions({}).speculative).toBeUndefined();
    expect(resolveOptions({ speculative: 'ngram' }).speculative).toBe('ngram');
    expect(() => resolveOptions({ speculative: 'always' as 'off' })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringMatching(/speculative must be one of off, draft, ngram/) }));
  });
});
