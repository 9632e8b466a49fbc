// The pure pieces of speculative decoding on hand-made arrays: prompt lookup, the
// acceptance rule (its output is distributed as p, whatever q drafted), and the verify /
// roll-back inputs over a left-padded batch.
import { describe, expect, it } from 'vitest';
import type { RowsState } from '../../text/batch-inputs.ts';
import { createRng } from '../../text/sampling/rng.ts';
import { drawFrom, judgeDraft, residual, type DraftToken } from '../../text/sampling/speculative.ts';
import { proposeNgram } from '../../text/speculative/ngram.ts';
import { rollbackColumns, verifyStep } from '../../text/speculative/verify-inputs.ts';

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

/** Empirical distribution of the kept token when x ~ q is drafted and judged against p. */
function keptDistribution(p: Float64Array, q: Float64Array | undefined, pointMassId: number, draws: number): Float64Array {
  const rng = createRng(7);
  const counts = new Float64Array(p.length);
  for (let i = 0; i < draws; i++) {
    const draft: DraftToken = q ? { id: drawFrom(q, rng), q } : { id: pointMassId };
    counts[judgeDraft(p, draft, rng).id]++;
  }
  return counts.map((c) => c / draws);
}

function totalVariation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / 2;
}

describe('judgeDraft (speculative sampling)', () => {
  const p = Float64Array.from([0.05, 0.4, 0.25, 0.3, 0]);
  const q = Float64Array.from([0.3, 0.1, 0.5, 0.05, 0.05]);

  it('keeps tokens distributed as p when drafts come from another distribution q', () => {
    expect(totalVariation(keptDistribution(p, q, 0, 200_000), p)).toBeLessThan(0.01);
  });
  it('keeps tokens distributed as p for point-mass (n-gram) drafts, likely or not', () => {
    for (const id of [0, 1, 4]) expect(totalVariation(keptDistribution(p, undefined, id, 200_000), p)).toBeLessThan(0.01);
  });
  it('always accepts where p ≥ q, and the residual is max(0, p − q)', () => {
    const rng = createRng(1);
    expect(judgeDraft(p, { id: 1, q }, rng)).toEqual({ id: 1, isAccepted: true });
    expect(Array.from(residual(p, { id: 2, q })).map((v) => +v.toFixed(6))).toEqual([0, 0.3, 0, 0.25, 0]);
  });
  it('a rule that always accepted would fail the same check (the check has teeth)', () => {
    const rng = createRng(3);
    const counts = new Float64Array(p.length);
    for (let i = 0; i < 50_000; i++) counts[drawFrom(q, rng)]++;
    expect(totalVariation(counts.map((c) => c / 50_000), p)).toBeGreaterThan(0.1);
  });
});

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
