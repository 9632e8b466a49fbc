// Left-padded decoder inputs for a batch of rows.
import { describe, expect, it } from 'vitest';
import { assembleStates, decodeStep, prefillStep } from '../../text/batch-inputs.ts';

describe('batch inputs', () => {
  it('left-pads prompts, masks the padding and counts positions per row', () => {
    const { step, state } = prefillStep([Int32Array.from([1, 4, 5]), Int32Array.from([1])], 0);
    expect(Array.from(step.inputIds)).toEqual([1, 4, 5, 0, 0, 1]);
    expect(Array.from(step.attentionMask)).toEqual([1, 1, 1, 0, 0, 1]);
    expect(Array.from(step.positionIds)).toEqual([0, 1, 2, 0, 0, 0]);
    const next = decodeStep(state, Int32Array.from([7, 8]));
    expect(Array.from(next.step.attentionMask)).toEqual([1, 1, 1, 1, 0, 0, 1, 1]);
    expect(Array.from(next.step.positionIds)).toEqual([3, 1]);
    const kept = assembleStates([{ state: next.state, rows: [1], fromColumn: 0 }]);
    expect(Array.from(kept.attentionMask)).toEqual([0, 0, 1, 1]);
    expect(Array.from(kept.nextPosition)).toEqual([2]);
  });
});
