// The runner's side of speculative decoding: verify every decode row's drafts in one
// target forward pass, and, on the next step, roll each row's cache back to the length
// the sampler accepted. Kept apart from batch-runner.ts so the plain path stays as it was.
import type { DecoderRunner } from '../../text/decoder-runner.ts';
import { rollbackColumns, verifyStep } from '../../text/speculative/verify-inputs.ts';
import type { LiveBatch, StepOut } from './batch-runner.ts';
import type { DecodeRow } from './plan.ts';

const NO_DRAFTS = new Int32Array(0);

export function hasDrafts(rows: readonly DecodeRow[]): boolean {
  return rows.some((r) => (r.draftIds?.length ?? 0) > 0);
}

/** Drop the drafts the sampler rejected last step (rows in batch order, as in the plan). */
export function rollBack(batch: LiveBatch | undefined, rows: readonly DecodeRow[]): LiveBatch | undefined {
  if (!batch || batch.ids.length !== rows.length) return batch; // out of sync: decode() reports it
  const rolled = rollbackColumns(batch.state, Int32Array.from(rows, (r) => r.numRejected ?? 0));
  if (!rolled) return batch;
  return { ...batch, state: rolled.state, cache: batch.cache.gatherColumns(rolled.columns, rolled.state.width) };
}

/** One target call over [newest token, drafts...] per row; logits for each row's real positions. */
export async function verifyRows(runner: DecoderRunner, padId: number, batch: LiveBatch, rows: readonly DecodeRow[]): Promise<StepOut & { numPositions: Int32Array }> {
  const started = performance.now();
  const next = verifyStep(batch.state, rows.map((r) => ({ tokenId: r.tokenId, draftIds: r.draftIds ?? NO_DRAFTS })), padId);
  const out = await runner.step({ tokens: next.step, encoderStates: batch.encoder, cache: batch.cache, isAllPositions: true });
  const numPositions = Int32Array.from(rows, (r) => (r.draftIds?.length ?? 0) + 1);
  const logits = realPositions(out.logits, numPositions, next.step.seqLength, out.vocabSize);
  const ms = performance.now() - started;
  return { batch: { ...batch, state: next.state, cache: out.cache }, logits, vocabSize: out.vocabSize, ms, numPositions };
}

/** [rows, seq, vocab] with holes in front → [Σ positions, vocab], each row's last positions. */
function realPositions(all: Float32Array, numPositions: Int32Array, seqLength: number, vocab: number): Float32Array {
  const out = new Float32Array(numPositions.reduce((n, p) => n + p, 0) * vocab);
  let offset = 0;
  numPositions.forEach((count, row) => {
    const from = (row * seqLength + seqLength - count) * vocab;
    out.set(all.subarray(from, from + count * vocab), offset);
    offset += count * vocab;
  });
  return out;
}
