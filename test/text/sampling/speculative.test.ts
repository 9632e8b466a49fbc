// Speculative sampling's acceptance rule and residual distribution.
import { describe, expect, it } from 'vitest';
import { createRng } from '../../../text/sampling/rng.ts';
import { drawFrom, judgeDraft, residual, type DraftToken } from '../../../text/sampling/speculative.ts';

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
