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
import type { DecodeRow, ModelRunner, PrefillRow, RunnerPlan, RunnerResult, StepAttention, StepGraph } from './plan.ts';
import type { PrefixCache } from './prefix-cache.ts';

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

  constructor(
    private readonly decoder: BatchDecoder,
    /** Joint models: cached image prefixes, and how many image tokens open every prompt. */
    private readonly prefixes?: { readonly cache: PrefixCache; readonly numTokens: number },
  ) {}

  reset(): void {
    this.batch = undefined;
    this.joined = undefined;
    this.isVerified = false;
    this.cross.clear();
  }

  async execute(plan: RunnerPlan): Promise<RunnerResult> {
    const merged = this.merge(plan.retire);
    const rolled = merged && this.isVerified ? rollBack(merged, rejectedOf(merged, plan.decode)) : merged;
    // Each cache the runner stops holding gives its arrays back for the next ones (KvCache.release).
    releaseReplaced([this.batch, this.joined, merged], rolled);
    this.batch = rolled;
    this.joined = undefined;
    this.isVerified = false;
    const decoded = plan.decode.length > 0 ? await this.decode(plan.decode, plan.graph) : undefined;
    const prefilled = plan.prefill.length > 0 ? await this.prefill(plan.prefill, plan.graph) : undefined;
    releaseReplaced([this.batch], decoded?.batch);
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
      attention: plan.graph === 'attention' ? concatAttention(parts.map((p) => p.attention!)) : undefined,
      headLogits: plan.graph === 'heads' ? concatFloats(parts.map((p) => p.headLogits!)) : undefined,
      prefixCached: prefilled?.prefixCached,
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

  /**
   * New rows, in the plan's order. With a prefix cache, rows whose image prefix is cached
   * feed only what follows it; the others prefill in full and leave their prefix behind.
   */
  private async prefill(rows: readonly PrefillRow[], graph: StepGraph): Promise<BatchStep & { prefixCached?: readonly number[] }> {
    const { prefixes } = this;
    if (!prefixes) return this.decoder.prefill(rows, graph);
    const cached = rows.map((r) => (r.imageKey ? prefixes.cache.lookup(r.imageKey) : undefined));
    const hit = rows.filter((_, i) => cached[i]);
    const miss = rows.filter((_, i) => !cached[i]);
    const parts: BatchStep[] = [];
    if (miss.length > 0) {
      const step = await this.decoder.prefill(miss, graph);
      miss.forEach((row, i) => {
        const start = step.batch.state.attentionMask.subarray(i * step.batch.state.width, (i + 1) * step.batch.state.width).indexOf(1);
        if (row.imageKey) prefixes.cache.store(row.imageKey, step.batch.cache.rowColumns(i, start, prefixes.numTokens));
      });
      parts.push(step);
    }
    if (hit.length > 0) parts.push(await this.decoder.prefillAfter(hit, cached.filter((c) => c !== undefined), graph));
    return { ...inPlanOrder(parts, rows.map((r) => r.id)), prefixCached: hit.map((r) => r.id) };
  }

  private async decode(rows: readonly DecodeRow[], graph: StepGraph): Promise<BatchStep & { numPositions?: Int32Array }> {
    const batch = this.batch;
    if (!batch || batch.ids.length !== rows.length || rows.some((r, i) => r.id !== batch.ids[i])) {
      throw new Error(`runner plan out of sync: batch rows [${batch?.ids.join(', ') ?? ''}], plan decodes [${rows.map((r) => r.id).join(', ')}]`);
    }
    if (rows.some((r) => (r.draftIds?.length ?? 0) > 0)) {
      return this.decoder.verify(batch, rows.map((r) => ({ tokenId: r.tokenId, draftIds: r.draftIds ?? NO_DRAFTS })), graph);
    }
    return this.decoder.decode(batch, Int32Array.from(rows, (r) => r.tokenId), graph);
  }
}

/** Several prefill parts as one, rows in the given id order: the batch, logits and attention rows alike. */
function inPlanOrder(parts: readonly BatchStep[], ids: readonly number[]): BatchStep {
  if (parts.length === 1) return parts[0];
  const where = new Map(parts.flatMap((p, k) => p.batch.ids.map((id, row): [number, [number, number]] => [id, [k, row]])));
  const picks = ids.map((id) => where.get(id)!);
  const vocab = parts[0].vocabSize;
  // Consecutive rows of one part are one source: [part, its rows in plan order] runs.
  const runs: [number, number[]][] = [];
  for (const [k, row] of picks) {
    const last = runs.at(-1);
    if (last && last[0] === k) last[1].push(row);
    else runs.push([k, [row]]);
  }
  const sources: BatchRows[] = runs.map(([k, rows]) => ({ batch: parts[k].batch, rows, fromColumn: 0 }));
  const headLogits = parts[0].headLogits && concatFloats(picks.map(([k, row]) => rowSlice(parts[k].headLogits!, row, parts[k].batch.ids.length)));
  const attention = parts[0].attention && {
    ...parts[0].attention,
    data: concatFloats(picks.map(([k, row]) => rowSlice(parts[k].attention!.data, row, parts[k].batch.ids.length))),
    firstKey: Int32Array.from(picks, ([k, row]) => parts[k].attention!.firstKey[row]),
  };
  return {
    batch: assemble(sources),
    logits: concatFloats(picks.map(([k, row]) => parts[k].logits.subarray(row * vocab, (row + 1) * vocab))),
    vocabSize: vocab,
    ms: parts.reduce((t, p) => t + p.ms, 0),
    attention,
    headLogits,
  };
}

function rowSlice(data: Float32Array, row: number, numRows: number): Float32Array {
  const per = data.length / numRows;
  return data.subarray(row * per, (row + 1) * per);
}

/** The decode rows' attention, then the prefill rows'. */
function concatAttention(parts: readonly StepAttention[]): StepAttention {
  return { ...parts[0], data: concatFloats(parts.map((p) => p.data)), firstKey: concatInts(parts.map((p) => p.firstKey)) };
}

/** Release the caches of `old` batches that `kept` does not hold (a batch passed on unchanged keeps its cache). */
function releaseReplaced(old: readonly (DecoderBatch | undefined)[], kept: DecoderBatch | undefined): void {
  for (const batch of new Set(old)) if (batch && batch.cache !== kept?.cache) batch.cache.release();
}

/** Drafts the sampler rejected last step, per batch row (the plan lists the rows in batch order). */
function rejectedOf(batch: DecoderBatch, rows: readonly DecodeRow[]): Int32Array {
  if (batch.ids.length !== rows.length) return new Int32Array(batch.ids.length); // out of sync: decode() reports it
  return Int32Array.from(rows, (r) => r.numRejected ?? 0);
}
