// The draft model as a Drafter: a small decoder (same tokenizer, conditioned on the main
// encoder's image features) that drafts k tokens per row in k cheap calls. It keeps its
// own batch and KV cache, independent of the target's: each step it keeps the rows asked
// for, rolls every row back to the longest prefix of what it fed that is still the row's
// sequence, feeds the rest, then drafts one token per call with the row's own sampler.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { gatherEncoderStates, selectEncoderRows } from '../../fusion/conditioning.ts';
import { concatStates, decodeStep, prefillStep, selectStateRows, type RowsState } from '../../text/batch-inputs.ts';
import { DecoderRunner, type EncoderStates } from '../../text/decoder-runner.ts';
import { KvCache } from '../../text/kv-cache.ts';
import type { DraftToken } from '../../text/sampling/speculative.ts';
import { rollbackColumns, verifyStep } from '../../text/speculative/verify-inputs.ts';
import { concatFloats } from './arrays.ts';
import type { EngineRequest } from './request.ts';
import type { Drafter } from './speculative.ts';

interface DraftBatch {
  ids: number[];
  /** Token ids each row's cache holds, in order. */
  fed: number[][];
  state: RowsState;
  cache: KvCache;
  encoder: EncoderStates; // [rows, patches, d]
}

/** `<modelDir>/draft/onnx/decoder_model_merged.onnx`, if the folder ships one. */
export async function findDraftDecoder(draftDir: string): Promise<string | undefined> {
  const path = join(draftDir, 'onnx', 'decoder_model_merged.onnx');
  return access(path).then(() => path, () => undefined);
}

export class DraftModel implements Drafter {
  private batch: DraftBatch | undefined;

  private constructor(private readonly runner: DecoderRunner, private readonly padId: number) {}

  static async load(path: string, padId: number, session: ort.InferenceSession.SessionOptions): Promise<DraftModel> {
    return new DraftModel(await DecoderRunner.load(path, session), padId);
  }

  reset(): void {
    this.batch = undefined;
  }

  async release(): Promise<void> {
    this.batch = undefined;
    await this.runner.release();
  }

  async propose(entries: readonly EngineRequest[], numDrafts: readonly number[]): Promise<DraftToken[][]> {
    const sequences = new Map(entries.map((e) => [e.id, e.row.sequence]));
    const kept = this.keep(sequences);
    const joining = entries.filter((e) => !kept?.ids.includes(e.id));
    const parts = [kept && (await this.catchUp(kept, sequences)), joining.length > 0 ? await this.prefill(joining, sequences) : undefined];
    const present = parts.filter((p): p is { batch: DraftBatch; logits: Float32Array } => p !== undefined);
    let batch = present.length === 1 ? present[0].batch : joinBatches(present[0].batch, present[1].batch);
    let logits = present.length === 1 ? present[0].logits : concatFloats([present[0].logits, present[1].logits]);
    const byId = new Map(entries.map((e, i) => [e.id, i]));
    const drafts: DraftToken[][] = entries.map(() => []);
    const vocab = logits.length / batch.ids.length;
    // A row is done at its count or at a drafted end-of-sequence; calls stop once all are.
    const isDone = (i: number): boolean => drafts[i].length >= numDrafts[i] || (drafts[i].length > 0 && entries[i].row.isEos(drafts[i][drafts[i].length - 1].id));
    for (;;) {
      const next = batch.ids.map((id, row) => {
        const i = byId.get(id)!;
        if (isDone(i)) return this.padId; // fed but never used
        const draft = entries[i].row.proposeDraft(logits.subarray(row * vocab, (row + 1) * vocab), drafts[i].map((d) => d.id));
        drafts[i].push(draft);
        return draft.id;
      });
      if (entries.every((_, i) => isDone(i))) break;
      ({ batch, logits } = await this.decode(batch, next));
    }
    this.batch = batch;
    return drafts;
  }

  /** The rows asked for (by id, with their sequences) that the batch already has, each rolled back to what is still valid. */
  private keep(sequences: ReadonlyMap<number, Int32Array>): DraftBatch | undefined {
    const batch = this.batch;
    if (!batch) return undefined;
    const rows = batch.ids.flatMap((id, i) => (sequences.has(id) ? [i] : []));
    if (rows.length === 0) return undefined;
    const kept = rows.length === batch.ids.length ? batch : selectBatchRows(batch, rows);
    const valid = kept.ids.map((id, i) => commonPrefix(kept.fed[i], sequences.get(id)!));
    const rolled = rollbackColumns(kept.state, valid.map((v, i) => kept.fed[i].length - v));
    if (!rolled) return kept;
    return { ...kept, fed: kept.fed.map((f, i) => f.slice(0, valid[i])), state: rolled.state, cache: kept.cache.gatherColumns(rolled.columns, rolled.state.width) };
  }

  /** Feed each kept row the tokens its cache lacks (at least its newest). */
  private async catchUp(batch: DraftBatch, sequences: ReadonlyMap<number, Int32Array>): Promise<{ batch: DraftBatch; logits: Float32Array }> {
    const pending = batch.ids.map((id, i) => sequences.get(id)!.slice(batch.fed[i].length));
    const next = verifyStep(batch.state, pending.map((p) => ({ tokenId: p[0], draftIds: p.subarray(1) })), this.padId);
    const out = await this.runner.step({ tokens: next.step, encoderStates: batch.encoder, cache: batch.cache });
    const fed = batch.fed.map((f, i) => [...f, ...pending[i]]);
    return { batch: { ...batch, fed, state: next.state, cache: out.cache }, logits: out.logits };
  }

  private async prefill(entries: readonly EngineRequest[], sequenceOf: ReadonlyMap<number, Int32Array>): Promise<{ batch: DraftBatch; logits: Float32Array }> {
    const sequences = entries.map((e) => sequenceOf.get(e.id)!);
    const first = prefillStep(sequences, this.padId);
    const encoder = gatherEncoderStates(entries.map((e) => e.lease!.embedding), entries.map((_, i) => i));
    const out = await this.runner.step({ tokens: first.step, encoderStates: encoder, cache: this.runner.emptyCache(entries.length) });
    const batch = { ids: entries.map((e) => e.id), fed: sequences.map((s) => Array.from(s)), state: first.state, cache: out.cache, encoder };
    return { batch, logits: out.logits };
  }

  private async decode(batch: DraftBatch, tokens: readonly number[]): Promise<{ batch: DraftBatch; logits: Float32Array }> {
    const next = decodeStep(batch.state, Int32Array.from(tokens));
    const out = await this.runner.step({ tokens: next.step, encoderStates: batch.encoder, cache: batch.cache });
    const fed = batch.fed.map((f, i) => [...f, tokens[i]]);
    return { batch: { ...batch, fed, state: next.state, cache: out.cache }, logits: out.logits };
  }
}

/** How much of what a row fed is still its sequence; never all of it, so the newest token is fed again. */
function commonPrefix(fed: readonly number[], sequence: Int32Array): number {
  let n = 0;
  while (n < fed.length && n < sequence.length - 1 && fed[n] === sequence[n]) n++;
  return n;
}

function selectBatchRows(batch: DraftBatch, rows: readonly number[]): DraftBatch {
  return {
    ids: rows.map((r) => batch.ids[r]),
    fed: rows.map((r) => batch.fed[r]),
    state: selectStateRows(batch.state, rows),
    cache: batch.cache.selectRows(rows),
    encoder: selectEncoderRows(batch.encoder, rows),
  };
}

function joinBatches(a: DraftBatch, b: DraftBatch): DraftBatch {
  return {
    ids: [...a.ids, ...b.ids],
    fed: [...a.fed, ...b.fed],
    state: concatStates([a.state, b.state]),
    cache: KvCache.concat([a.cache, b.cache]),
    encoder: { ...a.encoder, data: concatFloats([a.encoder.data, b.encoder.data]) },
  };
}
