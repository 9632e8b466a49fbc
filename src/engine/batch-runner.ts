// The runner adapter: a plan in, decoder-runner calls out. It owns the live batch (row
// ids, left-padded row state, batched KV cache, per-row image features) and keeps them
// aligned: decode the running rows, prefill the joining ones in a second call (their
// first step computes the cross-attention K/V, the running rows' steps reuse them, so
// the merged graph takes a different branch), and keep the joiners aside until the next
// step. There, whatever left (retire), joined (last step's prefill) and became padding
// for everyone is merged in one copy of the self-attention K/V; the cross-attention K/V
// stay in place in a CrossKvSlab (only joining rows are copied).
// No policy here: the plan says who runs.
import { assembleEncoderRows, gatherEncoderStates } from '../../fusion/conditioning.ts';
import { assembleStates, decodeStep, numLeadingPadColumns, prefillStep, type RowsState } from '../../text/batch-inputs.ts';
import type { DecoderRunner, EncoderStates } from '../../text/decoder-runner.ts';
import { CrossKvSlab } from '../../text/cross-kv-slab.ts';
import { KvCache, type KV } from '../../text/kv-cache.ts';
import { concatFloats, concatInts } from './arrays.ts';
import type { DecodeRow, ModelRunner, PrefillRow, RunnerPlan, RunnerResult } from './plan.ts';
import { hasDrafts, rollBack, verifyRows } from './verify-rows.ts';

export interface LiveBatch {
  ids: number[];
  state: RowsState;
  cache: KvCache;
  encoder: EncoderStates; // [rows, patches, d]; [rows, 1, d] of zeros once the cross K/V are cached (stepStates)
}

export interface StepOut {
  batch: LiveBatch;
  logits: Float32Array; // [rows, vocab]; [Σ positions, vocab] when verifying drafts
  numPositions?: Int32Array; // [rows], when verifying drafts
  vocabSize: number;
  ms: number;
}

export class BatchRunner implements ModelRunner {
  /** Rows decoded last step. */
  private batch: LiveBatch | undefined;
  /** Rows prefilled last step: appended to `batch` at the start of the next. */
  private joined: LiveBatch | undefined;
  /** Last step verified drafts: only then can rows hold rejected columns or holes to roll back. */
  private isVerified = false;
  /** The cross K/V of `batch`'s rows, in its order (encoder-decoder models). */
  private readonly cross = new CrossKvSlab();

  constructor(
    private readonly runner: DecoderRunner,
    private readonly padId: number,
  ) {}

  get numRows(): number {
    return (this.batch?.ids.length ?? 0) + (this.joined?.ids.length ?? 0);
  }

  reset(): void {
    this.batch = undefined;
    this.joined = undefined;
    this.isVerified = false;
    this.cross.clear();
  }

  async execute(plan: RunnerPlan): Promise<RunnerResult> {
    const merged = this.merge(plan.retire);
    this.batch = this.isVerified ? rollBack(merged, plan.decode) : merged;
    this.joined = undefined;
    this.isVerified = false;
    const decoded = plan.decode.length > 0 ? await this.decode(plan.decode) : undefined;
    const prefilled = plan.prefill.length > 0 ? await this.prefill(plan.prefill) : undefined;
    this.isVerified = decoded?.numPositions !== undefined;
    this.batch = decoded?.batch;
    this.joined = prefilled?.batch;
    const parts = [decoded, prefilled].filter((p): p is StepOut => p !== undefined);
    return {
      rowIds: parts.flatMap((p) => p.batch.ids),
      logits: concatFloats(parts.map((p) => p.logits)),
      numPositions: decoded?.numPositions && concatInts([decoded.numPositions, new Int32Array(plan.prefill.length).fill(1)]),
      vocabSize: parts[0]?.vocabSize ?? 0,
      decodeMs: decoded?.ms ?? 0,
      prefillMs: prefilled?.ms ?? 0,
      numCachedTokens: cachedTokens(parts.map((p) => p.batch)),
    };
  }

  /**
   * The batch for this step: last step's rows then its joiners, minus those that retire,
   * with the leading columns none of them attends to dropped. Unchanged (no copy) when
   * nothing joined, left or became padding.
   */
  private merge(retire: readonly number[]): LiveBatch | undefined {
    const leaving = new Set(retire);
    const main = keptRows(this.batch, leaving);
    const joined = keptRows(this.joined, leaving);
    if (main && !joined && main.rows.length === main.batch.ids.length && main.fromColumn === 0) return main.batch;
    const sources = [main, joined].filter((s): s is RowSource => s !== undefined);
    const cross = this.mergeCross(main, joined);
    if (sources.length === 0) return undefined;
    return {
      ids: sources.flatMap((s) => s.rows.map((i) => s.batch.ids[i])),
      state: assembleStates(sources.map((s) => ({ state: s.batch.state, rows: s.rows, fromColumn: s.fromColumn }))),
      cache: KvCache.assemble(sources.map((s) => ({ cache: s.batch.cache, rows: s.rows, fromColumn: s.fromColumn })), cross),
      encoder: assembleEncoderRows(sources.map((s) => ({ states: s.batch.encoder, rows: s.rows }))),
    };
  }

  /** The slab follows the merge in place; undefined for models without cached cross K/V. */
  private mergeCross(main: RowSource | undefined, joined: RowSource | undefined): readonly KV[] | undefined {
    const hasCross = (main ?? joined)?.batch.cache.hasCrossAttentionCache ?? false;
    if (!hasCross) {
      this.cross.clear();
      return undefined;
    }
    if (main && this.cross.size !== main.batch.ids.length) throw new Error(`cross K/V slab holds ${this.cross.size} rows, the batch ${main.batch.ids.length}`);
    this.cross.retainRowsInPlace(main?.rows ?? []);
    if (joined) this.cross.appendRows(joined.batch.cache.crossKv!, joined.rows);
    return this.cross.tensors();
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
    const batch = { ids: rows.map((r) => r.id), state: first.state, cache: out.cache, encoder: stepStates(encoder, out.cache) };
    return { batch, logits: out.logits, vocabSize: out.vocabSize, ms };
  }
}

interface RowSource {
  batch: LiveBatch;
  /** Indices of the rows that stay, ascending. */
  rows: number[];
  /** Leading columns none of `rows` attends to. */
  fromColumn: number;
}

function keptRows(batch: LiveBatch | undefined, leaving: ReadonlySet<number>): RowSource | undefined {
  if (!batch) return undefined;
  const rows = batch.ids.flatMap((id, i) => (leaving.has(id) ? [] : [i]));
  return rows.length === 0 ? undefined : { batch, rows, fromColumn: numLeadingPadColumns(batch.state, rows) };
}
/**
 * The encoder states later steps feed. Once the cross K/V are cached, the merged
 * decoder's cached branch never reads encoder_hidden_states (logits are bit-identical
 * with a one-patch placeholder on shapes-base and tiny-random; the engine invariance
 * tests hold it to that), but the input is declared: a zero patch per row keeps the feed
 * valid without carrying [rows, patches, d] along and copying it at every join and leave.
 * Self-only models recompute cross attention every step and keep the real states.
 */
function stepStates(states: EncoderStates, cache: KvCache): EncoderStates {
  if (!cache.hasCrossAttentionCache) return states;
  const rows = states.data.length / (states.numPatches * states.hiddenSize);
  return { data: new Float32Array(rows * states.hiddenSize), numPatches: 1, hiddenSize: states.hiddenSize };
}

/** Slots the parts hold once merged (left-padded to the longest), as the scheduler's budget counts them. */
function cachedTokens(parts: readonly LiveBatch[]): number {
  if (parts.length === 0) return 0;
  const numRows = parts.reduce((n, p) => n + p.cache.batchSize, 0);
  const width = Math.max(...parts.map((p) => p.cache.pastLength));
  const cross = parts[0].cache.crossKv?.[0].key.dims[2] ?? 0; // patches: [rows, heads, patches, headDim]
  return numRows * (width + cross);
}
