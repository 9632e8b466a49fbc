// The runner adapter: a plan in, decoder-runner calls out. It owns the live batch (row
// ids, left-padded row state, batched KV cache, per-row image features) and keeps them
// aligned: retire rows, trim padding nobody attends to, decode the running rows, prefill
// the joining ones in a second call, then merge them into one batch for the next step.
// No policy here: the plan says who runs.
import { gatherEncoderStates, selectEncoderRows } from '../../fusion/conditioning.ts';
import {
  concatStates, decodeStep, dropLeadingStateColumns, numLeadingPadColumns, prefillStep, selectStateRows, type RowsState,
} from '../../text/batch-inputs.ts';
import type { DecoderRunner, EncoderStates } from '../../text/decoder-runner.ts';
import { KvCache } from '../../text/kv-cache.ts';
import type { DecodeRow, ModelRunner, PrefillRow, RunnerPlan, RunnerResult } from './plan.ts';
import { hasDrafts, rollBack, verifyRows } from './verify-rows.ts';

export interface LiveBatch {
  ids: number[];
  state: RowsState;
  cache: KvCache;
  encoder: EncoderStates; // [rows, patches, d]
}

export interface StepOut {
  batch: LiveBatch;
  logits: Float32Array; // [rows, vocab]; [Σ positions, vocab] when verifying drafts
  numPositions?: Int32Array; // [rows], when verifying drafts
  vocabSize: number;
  ms: number;
}

export class BatchRunner implements ModelRunner {
  private batch: LiveBatch | undefined;

  constructor(
    private readonly runner: DecoderRunner,
    private readonly padId: number,
  ) {}

  get numRows(): number {
    return this.batch?.ids.length ?? 0;
  }

  reset(): void {
    this.batch = undefined;
  }

  async execute(plan: RunnerPlan): Promise<RunnerResult> {
    this.batch = trimPadding(rollBack(this.batch && retireRows(this.batch, plan.retire), plan.decode));
    const decoded = plan.decode.length > 0 ? await this.decode(plan.decode) : undefined;
    const prefilled = plan.prefill.length > 0 ? await this.prefill(plan.prefill) : undefined;
    const parts = [decoded, prefilled].filter((p): p is StepOut => p !== undefined);
    this.batch = parts.length === 0 ? undefined : parts.length === 1 ? parts[0].batch : joinBatches(parts[0].batch, parts[1].batch);
    return {
      rowIds: this.batch?.ids ?? [],
      logits: concatFloats(parts.map((p) => p.logits)),
      numPositions: decoded?.numPositions && concatInts([decoded.numPositions, new Int32Array(plan.prefill.length).fill(1)]),
      vocabSize: parts[0]?.vocabSize ?? 0,
      decodeMs: decoded?.ms ?? 0,
      prefillMs: prefilled?.ms ?? 0,
      numCachedTokens: this.batch ? cachedTokens(this.batch) : 0,
    };
  }

  private async decode(rows: readonly DecodeRow[]): Promise<StepOut> {
    const batch = this.batch;
    if (!batch || batch.ids.length !== rows.length || rows.some((r, i) => r.id !== batch.ids[i])) {
      throw new Error(`runner plan out of sync: batch rows [${batch?.ids.join(', ') ?? ''}], plan decodes [${rows.map((r) => r.id).join(', ')}]`);
    }
    if (hasDrafts(rows)) return verifyRows(this.runner, this.padId, batch, rows);
    const started = performance.now();
    const next = decodeStep(batch.state, Int32Array.from(rows, (r) => r.tokenId));
    const out = await this.runner.step({ tokens: next.step, encoderStates: batch.encoder, cache: batch.cache });
    const ms = performance.now() - started;
    return { batch: { ...batch, state: next.state, cache: out.cache }, logits: out.logits, vocabSize: out.vocabSize, ms };
  }

  private async prefill(rows: readonly PrefillRow[]): Promise<StepOut> {
    const started = performance.now();
    const first = prefillStep(rows.map((r) => r.tokenIds), this.padId);
    const encoder = gatherEncoderStates(rows.map((r) => r.embedding), rows.map((_, i) => i));
    const out = await this.runner.step({ tokens: first.step, encoderStates: encoder, cache: this.runner.emptyCache(rows.length) });
    const ms = performance.now() - started;
    const batch = { ids: rows.map((r) => r.id), state: first.state, cache: out.cache, encoder };
    return { batch, logits: out.logits, vocabSize: out.vocabSize, ms };
  }
}

function retireRows(batch: LiveBatch, retire: readonly number[]): LiveBatch | undefined {
  if (retire.length === 0) return batch;
  const leaving = new Set(retire);
  const keep = batch.ids.flatMap((id, i) => (leaving.has(id) ? [] : [i]));
  if (keep.length === batch.ids.length) return batch;
  if (keep.length === 0) return undefined;
  return {
    ids: keep.map((i) => batch.ids[i]),
    state: selectStateRows(batch.state, keep),
    cache: batch.cache.selectRows(keep),
    encoder: selectEncoderRows(batch.encoder, keep),
  };
}

/** Once the longest rows have left, the leading columns are padding for everyone: drop them. */
function trimPadding(batch: LiveBatch | undefined): LiveBatch | undefined {
  if (!batch) return undefined;
  const columns = numLeadingPadColumns(batch.state);
  if (columns === 0) return batch;
  return { ...batch, state: dropLeadingStateColumns(batch.state, columns), cache: batch.cache.dropLeadingColumns(columns) };
}

function joinBatches(a: LiveBatch, b: LiveBatch): LiveBatch {
  return {
    ids: [...a.ids, ...b.ids],
    state: concatStates([a.state, b.state]),
    cache: KvCache.concat([a.cache, b.cache]),
    encoder: { ...a.encoder, data: concatFloats([a.encoder.data, b.encoder.data]) },
  };
}

function cachedTokens(batch: LiveBatch): number {
  const { cache } = batch;
  const cross = cache.hasCrossAttentionCache ? batch.encoder.numPatches : 0;
  return cache.batchSize * (cache.pastLength + cross);
}

function concatInts(parts: readonly Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0);
  return out;
}

function concatFloats(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
