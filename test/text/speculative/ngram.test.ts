// Prompt lookup: drafts from the latest earlier match of the last n tokens.
import { describe, expect, it } from 'vitest';
import { proposeNgram } from '../../../text/speculative/ngram.ts';

describe('proposeNgram', () => {
  it('continues the latest earlier match of the longest suffix (3 → 1 tokens)', () => {
    expect(Array.from(proposeNgram([5, 6, 7, 8, 9, 5, 6, 7], 3))).toEqual([8, 9, 5]);
    expect(Array.from(proposeNgram([1, 2, 3, 1, 9, 9, 2, 3], 2))).toEqual([1, 9]); // "2 3" matched
    expect(Array.from(proposeNgram([4, 7, 1, 4, 2, 4], 4))).toEqual([2, 4]); // only "4": latest match at 3
  });
  it('drafts nothing without a match, and never past the end of the sequence', () => {
    expect(proposeNgram([1, 2, 3, 4], 4).length).toBe(0);
    expect(Array.from(proposeNgram([3, 3], 4))).toEqual([3]);
    expect(proposeNgram([], 4).length).toBe(0);
  });
});
