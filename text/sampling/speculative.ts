// Speculative sampling's acceptance rule (Leviathan et al. 2023, Chen et al. 2023): keep a
// drafted token x with probability min(1, p(x)/q(x)), otherwise draw from
// normalize(max(0, p − q)). The kept token is then distributed exactly as p, whatever q
// was. An n-gram draft has no distribution: q is a point mass on x.
import type { Rng } from './rng.ts';

export interface DraftToken {
  readonly id: number;
  /** The drafter's distribution at this position ([vocab]); absent: a point mass on id. */
  readonly q?: Float64Array;
}

export interface Verdict {
  readonly id: number;
  readonly isAccepted: boolean;
}

/** p: the target's distribution at the drafted position, after the request's processors and warpers. */
export function judgeDraft(p: Float64Array, draft: DraftToken, rng: Rng): Verdict {
  const px = p[draft.id] ?? 0;
  const qx = draft.q ? draft.q[draft.id] : 1;
  if (px >= qx || rng() * qx < px) return { id: draft.id, isAccepted: true };
  return { id: drawFrom(residual(p, draft), rng), isAccepted: false };
}

/** max(0, p − q), unnormalized (drawFrom normalizes). */
export function residual(p: Float64Array, draft: DraftToken): Float64Array {
  const out = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const qi = draft.q ? draft.q[i] : i === draft.id ? 1 : 0;
    out[i] = Math.max(0, p[i] - qi);
  }
  return out;
}

/** Inverse-CDF draw from non-negative weights; the heaviest index if they sum to zero. */
export function drawFrom(weights: Float64Array, rng: Rng): number {
  let total = 0;
  let heaviest = 0;
  for (let i = 0; i < weights.length; i++) {
    total += weights[i];
    if (weights[i] > weights[heaviest]) heaviest = i;
  }
  if (!(total > 0)) return heaviest;
  let u = rng() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i];
    if (u < 0 && weights[i] > 0) return i;
  }
  return heaviest; // u landed in float rounding slack past the last bucket
}
