// The model runner: a plan in, decoder calls out. It keeps the live batch aligned with
// the plan: decode the running rows, prefill the joining ones in a second call (their
// first step computes the cross-attention K/V, the running rows' steps reuse them, so
// the merged graph takes a different branch), and keep the joiners aside until the next
// step. There, whatever left (retire), joined (last step's prefill) and became padding
// for everyone is merged in one `assemble`; the cross-attention K/V stay in place in a
// CrossKvSlab (only joining rows are copied).
// No policy here: the plan says who runs.
import { CrossKvSlab } from '../../text/cross-kv-slab.ts';
import type { KV } from '../../text/kv-cache.ts';
import { concatFloats, concatInts } from './arrays.ts';
import { assemble, cachedTokens, isWholeBatch, keepRows, rollBack, type BatchDecoder, type BatchRows, type BatchStep, type DecoderBatch } from './decoder-batch.ts';
import type { DecodeRow, ModelRunner, RunnerPlan, RunnerResult, StepAttention } from './plan.ts';

const NO_DRAFTS = new Int32Array(0);

export class BatchRunner implements ModelRunner {
  /** Rows decoded last step. */
  private batch: DecoderBatch | undefined;
  /** Rows prefilled last step: appended to `batch` at the start of the next. */
  private joined: DecoderBatch | undefined;
  /** Last step verified drafts: only then can rows hold rejected columns or holes to roll back. */
  private isVerified = false;
  /** The cross K/V of `batch`'s rows, in its order (encoder-decoder models). */
  private readonly cross = new CrossKvSlab();

  constructor(private readonly decoder: BatchDecoder) {}

  reset(): void {
    this.batch = undefined;
    this.joined = undefined;
    this.isVerified = false;
    this.cross.clear();
  }

  async execute(plan: RunnerPlan): Promise<RunnerResult> {
    const merged = this.merge(plan.retire);
    this.batch = merged && this.isVerified ? rollBack(merged, rejectedOf(merged, plan.decode)) : merged;
    this.joined = undefined;
    this.isVerified = false;
    const decoded = plan.decode.length > 0 ? await this.decode(plan.decode, plan.withAttention) : undefined;
    const prefilled = plan.prefill.length > 0 ? await this.decoder.prefill(plan.prefill, plan.withAttention) : undefined;
    this.isVerified = decoded?.numPositions !== undefined;
    this.batch = decoded?.batch;
    this.joined = prefilled?.batch;
    const parts = [decoded, prefilled].filter((p): p is BatchStep => p !== undefined);
    return {
      rowIds: parts.flatMap((p) => p.batch.ids),
      logits: concatFloats(parts.map((p) => p.logits)),
      numPositions: decoded?.numPositions && concatInts([decoded.numPositions, new Int32Array(plan.prefill.length).fill(1)]),
      vocabSize: parts[0]?.vocabSize ?? 0,
      decodeMs: decoded?.ms ?? 0,
      prefillMs: prefilled?.ms ?? 0,
      numCachedTokens: cachedTokens(parts.map((p) => p.batch)),
      attention: plan.withAttention ? concatAttention(parts.map((p) => p.attention!)) : undefined,
    };
  }

  /**
   * The batch for this step: last step's rows then its joiners, minus those that retire,
   * with the leading columns none of them attends to dropped. Unchanged (no copy) when
   * nothing joined, left or became padding.
   */
  private merge(retire: readonly number[]): DecoderBatch | undefined {
    const leaving = new Set(retire);
    const main = keepRows(this.batch, (id) => !leaving.has(id));
    const joined = keepRows(this.joined, (id) => !leaving.has(id));
    if (main && !joined && isWholeBatch(main)) return main.batch;
    const sources = [main, joined].filter((s): s is BatchRows => s !== undefined);
    const cross = this.mergeCross(main, joined);
    return sources.length === 0 ? undefined : assemble(sources, cross);
  }

  /** The slab follows the merge in place; undefined for models without cached cross K/V. */
  private mergeCross(main: BatchRows | undefined, joined: BatchRows | undefined): readonly KV[] | undefined {
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

  private async decode(rows: readonly DecodeRow[], withAttention: boolean): Promise<BatchStep & { numPositions?: Int32Array }> {
    const batch = this.batch;
    if (!batch || batch.ids.length !== rows.length || rows.some((r, i) => r.id !== batch.ids[i])) {
      throw new Error(`runner plan out of sync: batch rows [${batch?.ids.join(', ') ?? ''}], plan decodes [${rows.map((r) => r.id).join(', ')}]`);
    }
    if (rows.some((r) => (r.draftIds?.length ?? 0) > 0)) {
      return this.decoder.verify(batch, rows.map((r) => ({ tokenId: r.tokenId, draftIds: r.draftIds ?? NO_DRAFTS })), withAttention);
    }
    return this.decoder.decode(batch, Int32Array.from(rows, (r) => r.tokenId), withAttention);
  }
}

/** The decode rows' attention, then the prefill rows'. */
function concatAttention(parts: readonly StepAttention[]): StepAttention {
  return { ...parts[0], data: concatFloats(parts.map((p) => p.data)) };
}

/** Drafts the sampler rejected last step, per batch row (the plan lists the rows in batch order). */
function rejectedOf(batch: DecoderBatch, rows: readonly DecodeRow[]): Int32Array {
  if (batch.ids.length !== rows.length) return new Int32Array(batch.ids.length); // out of sync: decode() reports it
  return Int32Array.from(rows, (r) => r.numRejected ?? 0);
}
