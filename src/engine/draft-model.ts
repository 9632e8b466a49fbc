// The draft model as a Drafter: a small decoder (same tokenizer, conditioned on the main
// encoder's image features) that drafts k tokens per row in k cheap calls. It keeps its
// own decoder batch, independent of the target's: each step it keeps the rows asked
// for, rolls every row back to the longest prefix of what it fed that is still the row's
// sequence, feeds the rest, then drafts one token per call with the row's own sampler.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { loadDecoderRunner } from '../model/load.ts';
import type { DraftToken } from '../../text/sampling/speculative.ts';
import { concatFloats } from './arrays.ts';
import { assemble, BatchDecoder, keepRows, rollBack, type BatchStep, type DecoderBatch } from './decoder-batch.ts';
import type { DraftRow, Drafter } from './speculator.ts';

/** `<modelDir>/draft/onnx/decoder_model_merged.onnx`, if the folder ships one (its decode-only graph beside it is used too). */
export async function findDraftDecoder(draftDir: string): Promise<string | undefined> {
  const path = join(draftDir, 'onnx', 'decoder_model_merged.onnx');
  return access(path).then(() => path, () => undefined);
}

export class DraftModel implements Drafter {
  private batch: DecoderBatch | undefined;
  /** Token ids each row's cache holds, in order, by row id. */
  private fed = new Map<number, number[]>();

  private constructor(private readonly decoder: BatchDecoder) {}

  static async load(path: string, padId: number, session: ort.InferenceSession.SessionOptions): Promise<DraftModel> {
    return new DraftModel(new BatchDecoder(await loadDecoderRunner(path, session), padId));
  }

  reset(): void {
    this.batch = undefined;
    this.fed.clear();
  }

  async release(): Promise<void> {
    this.reset();
    await this.decoder.runner.release();
  }

  async propose(rows: readonly DraftRow[], numDrafts: readonly number[]): Promise<DraftToken[][]> {
    const sequences = new Map(rows.map((r) => [r.id, r.sequence]));
    const kept = this.keep(sequences);
    const joining = rows.filter((r) => !kept?.ids.includes(r.id));
    const parts = [kept && (await this.catchUp(kept, sequences)), joining.length > 0 ? await this.prefill(joining) : undefined];
    const present = parts.filter((p): p is BatchStep => p !== undefined);
    let batch = assemble(present.map((p) => keepRows(p.batch, () => true)!));
    let logits = concatFloats(present.map((p) => p.logits));
    this.fed = new Map([...this.fed].filter(([id]) => sequences.has(id)));
    const byId = new Map(rows.map((r, i) => [r.id, i]));
    const drafts: DraftToken[][] = rows.map(() => []);
    const vocab = logits.length / batch.ids.length;
    // A row is done at its count or at a drafted end-of-sequence; calls stop once all are.
    const isDone = (i: number): boolean => drafts[i].length >= numDrafts[i] || (drafts[i].length > 0 && rows[i].isEos(drafts[i][drafts[i].length - 1].id));
    for (;;) {
      const next = batch.ids.map((id, row) => {
        const i = byId.get(id)!;
        if (isDone(i)) return this.decoder.padId; // fed but never used
        const draft = rows[i].propose(logits.subarray(row * vocab, (row + 1) * vocab), drafts[i].map((d) => d.id));
        drafts[i].push(draft);
        return draft.id;
      });
      if (rows.every((_, i) => isDone(i))) break;
      const step = await this.decoder.decode(batch, Int32Array.from(next));
      batch.ids.forEach((id, row) => this.fed.get(id)!.push(next[row]));
      batch.cache.release(); // the step built the next cache from it (KvCache.release)
      ({ batch, logits } = step);
    }
    if (this.batch && this.batch.cache !== batch.cache) this.batch.cache.release();
    this.batch = batch;
    return drafts;
  }

  /** The rows asked for (by id, with their sequences) that the batch already has, each rolled back to what is still valid. */
  private keep(sequences: ReadonlyMap<number, Int32Array>): DecoderBatch | undefined {
    const source = keepRows(this.batch, (id) => sequences.has(id));
    if (!source) return undefined;
    const kept = assemble([{ ...source, fromColumn: 0 }]);
    const numStale = kept.ids.map((id) => {
      const fed = this.fed.get(id)!;
      const valid = commonPrefix(fed, sequences.get(id)!);
      const stale = fed.length - valid;
      fed.length = valid;
      return stale;
    });
    return rollBack(kept, numStale);
  }

  /** Feed each kept row the tokens its cache lacks (at least its newest). */
  private async catchUp(batch: DecoderBatch, sequences: ReadonlyMap<number, Int32Array>): Promise<BatchStep> {
    const pending = batch.ids.map((id) => sequences.get(id)!.slice(this.fed.get(id)!.length));
    const step = await this.decoder.verify(batch, pending.map((p) => ({ tokenId: p[0], draftIds: p.subarray(1) })));
    batch.ids.forEach((id, i) => this.fed.get(id)!.push(...pending[i]));
    return { ...step, logits: lastPositions(step.logits, step.numPositions, step.vocabSize) };
  }

  private async prefill(rows: readonly DraftRow[]): Promise<BatchStep> {
    const step = await this.decoder.prefill(rows.map((r) => ({ id: r.id, tokenIds: r.sequence, embedding: r.embedding })));
    for (const r of rows) this.fed.set(r.id, Array.from(r.sequence));
    return step;
  }
}

/** How much of what a row fed is still its sequence; never all of it, so the newest token is fed again. */
function commonPrefix(fed: readonly number[], sequence: Int32Array): number {
  let n = 0;
  while (n < fed.length && n < sequence.length - 1 && fed[n] === sequence[n]) n++;
  return n;
}

/** [Σ positions, vocab] → [rows, vocab]: each row's last position. */
function lastPositions(logits: Float32Array, numPositions: Int32Array, vocab: number): Float32Array {
  const out = new Float32Array(numPositions.length * vocab);
  let end = 0;
  numPositions.forEach((count, row) => {
    end += count;
    out.set(logits.subarray((end - 1) * vocab, end * vocab), row * vocab);
  });
  return out;
}
