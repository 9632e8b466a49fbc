// Verify-step inputs and the roll-back after it, on hand-made row states.
import { describe, expect, it } from 'vitest';
import type { RowsState } from '../../../text/batch-inputs.ts';
import { rollbackColumns, verifyStep } from '../../../text/speculative/verify-inputs.ts';

describe('verifyStep and rollbackColumns', () => {
  // Two rows, width 3: row 0 holds 3 tokens, row 1 holds 2 (one pad column in front).
  const state: RowsState = { batchSize: 2, width: 3, attentionMask: Int32Array.from([1, 1, 1, 0, 1, 1]), nextPosition: Int32Array.from([3, 2]) };

  it('feeds [newest, drafts...] right-aligned, holes in front of shorter rows, positions counting real tokens', () => {
    const { step, state: next } = verifyStep(state, [{ tokenId: 10, draftIds: Int32Array.from([11, 12]) }, { tokenId: 20, draftIds: new Int32Array(0) }], 0);
    expect(step.seqLength).toBe(3);
    expect(Array.from(step.inputIds)).toEqual([10, 11, 12, 0, 0, 20]);
    expect(Array.from(step.positionIds)).toEqual([3, 4, 5, 2, 2, 2]);
    expect(Array.from(step.attentionMask)).toEqual([1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1]);
    expect(Array.from(next.nextPosition)).toEqual([6, 3]);
  });

  it('drops each row’s rejected drafts and closes the holes', () => {
    const verified = verifyStep(state, [{ tokenId: 10, draftIds: Int32Array.from([11, 12]) }, { tokenId: 20, draftIds: new Int32Array(0) }], 0).state;
    const rolled = rollbackColumns(verified, [1, 0])!;
    expect(rolled.columns).toEqual([[0, 1, 2, 3, 4], [1, 2, 5]]);
    expect(rolled.state.width).toBe(5);
    expect(Array.from(rolled.state.attentionMask)).toEqual([1, 1, 1, 1, 1, 0, 0, 1, 1, 1]);
    expect(Array.from(rolled.state.nextPosition)).toEqual([5, 3]);
  });

  it('leaves a hole-free state with nothing rejected alone', () => {
    expect(rollbackColumns(state, [0, 0])).toBeUndefined();
  });
});
