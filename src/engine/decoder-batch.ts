// A batch of decoder rows and the four calls on it: prefill, decode, verify (speculative
// drafts) and roll back; plus `assemble`, the one copy that joins, drops and trims rows.
// The engine's runner, the draft model and the reference decoder all decode through
// this; each keeps only its own bookkeeping (request ids, fed tokens) beside it.
//
// Rows are left-padded so every row's next token lands in the same column (RowsState);
// the KV cache, the attention mask and the encoder rows stay aligned row for row.
import { assembleEncoderRows, gatherEncoderStates } from '../../fusion/conditioning.ts';
import { assembleStates, decodeStep, numLeadingPadColumns, prefillAfterPast, prefillStep, type RowsState } from '../../text/batch-inputs.ts';
import type { DecoderRunner, EncoderStates, LayerAttentions } from '../../text/decoder-runner.ts';
import { KvCache, type KV, type RowKv } from '../../text/kv-cache.ts';
import { rollbackColumns, verifyStep, type VerifyRow } from '../../text/speculative/verify-inputs.ts';
import type { ImageEmbedding } from '../../vision/encoder.ts';

export interface DecoderBatch {
  /** The caller's id of each row (request ids in the engine). */
  readonly ids: readonly number[];
  readonly state: RowsState;
  readonly cache: KvCache;
  readonly encoder: EncoderStates; // [rows, patches, d]; [rows, 1, d] of zeros once the cross K/V are cached (stepStates)
}

export interface BatchStep {
  readonly batch: DecoderBatch;
  readonly logits: Float32Array; // [rows, vocab]; [Σ positions, vocab] after verify
  readonly vocabSize: number;
  readonly ms: number;
  /** When the step ran with attention: each row's attention at its last position. */
  readonly attention?: StepAttention;
  /** When the step ran the Medusa graph: the heads' logits at the same positions as `logits`, [positions, heads, vocab]. */
  readonly headLogits?: Float32Array;
}

/**
 * Which decoder graph a step runs: the plain one; the variant with attention outputs
 * (some row wants maps); or the one with Medusa heads (some row speculates with them).
 * All three take and give the same cache and the same logits.
 */
export type StepGraph = 'plain' | 'attention' | 'heads';

export interface StepAttention {
  readonly data: Float32Array; // [rows, layers, heads, keys]
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKeys: number;
  /** Self-attention: each row's first attended key column (its left padding ends there; a joint prompt's image tokens start there). */
  readonly firstKey: Int32Array; // [rows]
}

export interface PrefillRow {
  readonly id: number;
  readonly tokenIds: Int32Array; // [seq]
  readonly embedding: ImageEmbedding;
  /** The image's content hash: the key of its cached prefix (joint models). */
  readonly imageKey?: string;
}

/** [batch, heads, seq, keys] per layer → [rows, layers, heads, keys] at each row's last position (left padding: the last column). */
function lastPositions(attentions: LayerAttentions | undefined, state: RowsState): StepAttention | undefined {
  if (!attentions) return undefined;
  const { layers, numHeads, seqLength, numKeys } = attentions;
  const numRows = layers[0].length / (numHeads * seqLength * numKeys);
  const data = new Float32Array(numRows * layers.length * numHeads * numKeys);
  for (let r = 0; r < numRows; r++) {
    layers.forEach((layer, l) => {
      for (let h = 0; h < numHeads; h++) {
        const from = ((r * numHeads + h) * seqLength + seqLength - 1) * numKeys;
        data.set(layer.subarray(from, from + numKeys), ((r * layers.length + l) * numHeads + h) * numKeys);
      }
    });
  }
  const firstKey = Int32Array.from({ length: numRows }, (_, r) => Math.max(0, state.attentionMask.subarray(r * state.width, (r + 1) * state.width).indexOf(1)));
  return { data, numLayers: layers.length, numHeads, numKeys, firstKey };
}

/** Rows of one batch taken into `assemble`. */
export interface BatchRows {
  readonly batch: DecoderBatch;
  /** Indices of the rows that stay, in the order they take in the result. */
  readonly rows: readonly number[];
  /** Leading columns none of `rows` attends to: dropped. */
  readonly fromColumn: number;
}

export class BatchDecoder {
  constructor(
    readonly runner: DecoderRunner,
    readonly padId: number,
    /** The same decoder with attention outputs (same weights, same cache), for steps that want maps. */
    readonly attentionRunner?: DecoderRunner,
    /** The same decoder with Medusa heads as one more output (same weights, same cache). */
    readonly headsRunner?: DecoderRunner,
  ) {}

  /** New rows: their prompts left-padded to the longest, conditioned on their images. */
  async prefill(rows: readonly PrefillRow[], graph: StepGraph = 'plain'): Promise<BatchStep> {
    const started = performance.now();
    const first = prefillStep(rows.map((r) => r.tokenIds), this.padId);
    const encoder = gatherEncoderStates(rows.map((r) => r.embedding), rows.map((_, i) => i));
    const out = await this.runnerFor(graph).step({ tokens: first.step, encoderStates: encoder, cache: this.runner.emptyCache(rows.length) });
    const batch = { ids: rows.map((r) => r.id), state: first.state, cache: out.cache, encoder: this.runner.readsImageEveryStep ? encoder : placeholderStates(encoder) };
    return { batch, logits: out.logits, vocabSize: out.vocabSize, ms: performance.now() - started, attention: lastPositions(out.attentions, first.state), headLogits: out.headLogits };
  }

  /**
   * New rows whose first tokens' K/V are already known (a cached image prefix, the same
   * length for every row): only the tokens after it are fed, after the prefixes as past.
   */
  async prefillAfter(rows: readonly PrefillRow[], prefixes: readonly RowKv[], graph: StepGraph = 'plain'): Promise<BatchStep> {
    const started = performance.now();
    const pastLength = prefixes[0].length;
    const first = prefillAfterPast(rows.map((r) => r.tokenIds.subarray(pastLength)), pastLength, this.padId);
    const encoder = gatherEncoderStates(rows.map((r) => r.embedding), rows.map((_, i) => i));
    const images = placeholderStates(encoder); // the image is in the past already: no image token is fed
    const out = await this.runnerFor(graph).step({ tokens: first.step, encoderStates: images, cache: KvCache.fromRows(this.runner.layout, prefixes) });
    const batch = { ids: rows.map((r) => r.id), state: first.state, cache: out.cache, encoder: images };
    return { batch, logits: out.logits, vocabSize: out.vocabSize, ms: performance.now() - started, attention: lastPositions(out.attentions, first.state), headLogits: out.headLogits };
  }

  /** One new token per row. */
  async decode(batch: DecoderBatch, tokenIds: Int32Array, graph: StepGraph = 'plain'): Promise<BatchStep> {
    const started = performance.now();
    const next = decodeStep(batch.state, tokenIds);
    const out = await this.runnerFor(graph).step({ tokens: next.step, encoderStates: batch.encoder, cache: batch.cache });
    const step = { batch: { ...batch, state: next.state, cache: out.cache }, logits: out.logits, vocabSize: out.vocabSize, ms: performance.now() - started };
    return { ...step, attention: lastPositions(out.attentions, next.state), headLogits: out.headLogits };
  }

  private runnerFor(graph: StepGraph): DecoderRunner {
    if (graph === 'plain') return this.runner;
    const runner = graph === 'attention' ? this.attentionRunner : this.headsRunner;
    if (!runner) throw new Error(`this decoder has no ${graph === 'attention' ? 'attention outputs' : 'Medusa heads'}`);
    return runner;
  }

  /**
   * Each row's newest token plus its drafts in one call; logits for each row's real
   * positions, `numPositions[r]` = drafts + 1, rows in order. Rows with fewer drafts
   * get holes (masked columns) that `rollBack` closes.
   */
  async verify(batch: DecoderBatch, rows: readonly VerifyRow[], graph: StepGraph = 'plain'): Promise<BatchStep & { numPositions: Int32Array }> {
    const started = performance.now();
    const next = verifyStep(batch.state, rows, this.padId);
    const out = await this.runnerFor(graph).step({ tokens: next.step, encoderStates: batch.encoder, cache: batch.cache, isAllPositions: true });
    const numPositions = Int32Array.from(rows, (r) => r.draftIds.length + 1);
    const logits = realPositions(out.logits, numPositions, next.step.seqLength, out.vocabSize);
    const headLogits = out.headLogits && realPositions(out.headLogits, numPositions, next.step.seqLength, out.headLogits.length / (rows.length * next.step.seqLength));
    // Attention is only for rows without drafts (the engine does not speculate for them): their token is the last column.
    const step = { batch: { ...batch, state: next.state, cache: out.cache }, logits, vocabSize: out.vocabSize, ms: performance.now() - started, numPositions, headLogits };
    return { ...step, attention: lastPositions(out.attentions, next.state) };
  }
}

/** The rows of `batch` whose ids `keep` accepts, with the leading columns only the others attended to; undefined if none stays. */
export function keepRows(batch: DecoderBatch | undefined, keep: (id: number) => boolean): BatchRows | undefined {
  if (!batch) return undefined;
  const rows = batch.ids.flatMap((id, i) => (keep(id) ? [i] : []));
  return rows.length === 0 ? undefined : { batch, rows, fromColumn: numLeadingPadColumns(batch.state, rows) };
}

/** True when `source` is its whole batch unchanged: assembling it alone would copy for nothing. */
export function isWholeBatch(source: BatchRows): boolean {
  return source.fromColumn === 0 && source.rows.length === source.batch.ids.length && source.rows.every((r, i) => r === i);
}

/**
 * One batch from rows of several, in order: the one copy of state, self-attention K/V
 * and encoder rows per join or leave. `cross`, when given, are the result's cross K/V
 * already assembled in place (the runner's CrossKvSlab); otherwise they are copied.
 */
export function assemble(sources: readonly BatchRows[], cross?: readonly KV[]): DecoderBatch {
  if (sources.length === 1 && !cross && isWholeBatch(sources[0])) return sources[0].batch;
  return {
    ids: sources.flatMap((s) => s.rows.map((i) => s.batch.ids[i])),
    state: assembleStates(sources.map((s) => ({ state: s.batch.state, rows: s.rows, fromColumn: s.fromColumn }))),
    cache: KvCache.assemble(sources.map((s) => ({ cache: s.batch.cache, rows: s.rows, fromColumn: s.fromColumn })), cross),
    encoder: assembleEncoderRows(sources.map((s) => ({ states: s.batch.encoder, rows: s.rows }))),
  };
}

/** Drop each row's last `numRejected[r]` columns and close verify's holes; unchanged when there are none. */
export function rollBack(batch: DecoderBatch, numRejected: ArrayLike<number>): DecoderBatch {
  const rolled = rollbackColumns(batch.state, numRejected);
  if (!rolled) return batch;
  return { ...batch, state: rolled.state, cache: batch.cache.gatherColumns(rolled.columns, rolled.state.width) };
}

/** Slots the batches hold once assembled (left-padded to the longest), as the KV budget counts them. */
export function cachedTokens(batches: readonly DecoderBatch[]): number {
  if (batches.length === 0) return 0;
  const numRows = batches.reduce((n, b) => n + b.cache.batchSize, 0);
  const width = Math.max(...batches.map((b) => b.cache.pastLength));
  const cross = batches[0].cache.crossKv?.[0].key.dims[2] ?? 0; // patches: [rows, heads, patches, headDim]
  return numRows * (width + cross);
}

/**
 * The image states later steps feed, when the first step has put the image in the cache:
 * an encoder-decoder's cached cross K/V (the merged decoder's cached branch never reads
 * encoder_hidden_states: logits are bit-identical with a one-patch placeholder on
 * shapes-base and tiny-random; the engine invariance tests hold it to that, but the input
 * is declared), or a joint model's image tokens. A zero patch per row keeps the feed
 * valid without carrying [rows, patches, d] along and copying it at every join and leave.
 */
function placeholderStates(states: EncoderStates): EncoderStates {
  const rows = states.data.length / (states.numPatches * states.hiddenSize);
  return { data: new Float32Array(rows * states.hiddenSize), numPatches: 1, hiddenSize: states.hiddenSize };
}

/** [rows, seq, per] with holes in front → [Σ positions, per], each row's last positions (per: vocab, or heads × vocab). */
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
