// Decoder inputs for speculative verification and the roll-back after it, on the same
// left-padded RowsState as plain decoding. A verify step feeds each row its newest token
// plus its drafts as new columns; rows with fewer drafts get holes (mask 0) in front of
// theirs, so every row's tokens end in the last column. After the sampler has judged the
// drafts, each row keeps its attended columns minus the rejected tail, right-aligned
// again: the state is hole-free and every row's length is what plain decoding would have.
import type { RowsState, StepTokens } from '../batch-inputs.ts';

export interface VerifyRow {
  readonly tokenId: number;
  readonly draftIds: Int32Array;
}

/** One verify step: [newest token, drafts...] per row as new columns. */
export function verifyStep(state: RowsState, rows: readonly VerifyRow[], padId: number): { step: StepTokens; state: RowsState } {
  const { batchSize, width } = state;
  if (rows.length !== batchSize) throw new Error(`verifyStep: ${rows.length} rows for a batch of ${batchSize}`);
  const seqLength = Math.max(...rows.map((r) => r.draftIds.length + 1));
  const total = width + seqLength;
  const inputIds = new Int32Array(batchSize * seqLength).fill(padId);
  const positionIds = new Int32Array(batchSize * seqLength);
  const attentionMask = new Int32Array(batchSize * total);
  const nextPosition = new Int32Array(batchSize);
  rows.forEach((r, row) => {
    attentionMask.set(state.attentionMask.subarray(row * width, (row + 1) * width), row * total);
    const count = r.draftIds.length + 1;
    const hole = seqLength - count;
    const start = state.nextPosition[row];
    positionIds.fill(start, row * seqLength, row * seqLength + hole); // holes are never attended
    for (let j = 0; j < count; j++) {
      inputIds[row * seqLength + hole + j] = j === 0 ? r.tokenId : r.draftIds[j - 1];
      positionIds[row * seqLength + hole + j] = start + j;
      attentionMask[row * total + width + hole + j] = 1;
    }
    nextPosition[row] = start + count;
  });
  return { step: { inputIds, seqLength, attentionMask, positionIds }, state: { batchSize, width: total, attentionMask, nextPosition } };
}

/**
 * Drop each row's last numRejected[r] attended columns and close the holes. Returns the
 * source columns per row (for KvCache.gatherColumns) and the matching state, or
 * undefined when there is nothing to drop and no hole to close.
 */
export function rollbackColumns(state: RowsState, numRejected: ArrayLike<number>): { columns: number[][]; state: RowsState } | undefined {
  const { batchSize, width, attentionMask } = state;
  let isNeeded = false;
  for (let row = 0; row < batchSize && !isNeeded; row++) isNeeded = numRejected[row] > 0 || hasHole(attentionMask.subarray(row * width, (row + 1) * width));
  if (!isNeeded) return undefined;
  const columns: number[][] = [];
  for (let row = 0; row < batchSize; row++) {
    const attended: number[] = [];
    for (let c = 0; c < width; c++) if (attentionMask[row * width + c] !== 0) attended.push(c);
    columns.push(attended.slice(0, attended.length - numRejected[row]));
  }
  const next = Math.max(...columns.map((c) => c.length));
  const mask = new Int32Array(batchSize * next);
  columns.forEach((c, row) => mask.fill(1, (row + 1) * next - c.length, (row + 1) * next));
  const nextPosition = Int32Array.from(state.nextPosition, (p, row) => p - numRejected[row]);
  return { columns, state: { batchSize, width: next, attentionMask: mask, nextPosition } };
}

/** A masked column after an attended one. */
function hasHole(mask: Int32Array): boolean {
  let isSeen = false;
  for (const m of mask) {
    if (m !== 0) isSeen = true;
    else if (isSeen) return true;
  }
  return false;
}
