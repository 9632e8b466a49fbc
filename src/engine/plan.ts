// The two messages between the engine and the model runner: what to run this step, and
// what came out. Ids are request ids; the runner maps them to its batch rows.

/** A row already in the batch: feed it its newest token. */
export interface DecodeRow {
  readonly id: number;
  readonly tokenId: number;
  /** Speculation: tokens drafted after tokenId, verified in the same forward pass. */
  readonly draftIds?: Int32Array;
  /** Drafts the previous step verified and the sampler rejected: dropped from the cache first. */
  readonly numRejected?: number;
}

/** A row joining the batch: prefill these tokens, conditioned on this image. */
export type { PrefillRow, StepAttention, StepGraph } from './decoder-batch.ts';
import type { PrefillRow, StepAttention, StepGraph } from './decoder-batch.ts';

export interface RunnerPlan {
  /** The decoder graph this step runs: 'attention' when some row asked for attention maps, 'heads' when some row speculates with Medusa heads. */
  readonly graph: StepGraph;
  /** Rows that leave before anything runs (finished, cancelled or preempted). */
  readonly retire: readonly number[];
  /** Exactly the rows left in the batch after `retire`, in batch order. */
  readonly decode: readonly DecodeRow[];
  /** Appended to the batch after the decode rows. */
  readonly prefill: readonly PrefillRow[];
}

export interface RunnerResult {
  /** Request id of each logits row: the decode rows, then the prefill rows. */
  readonly rowIds: readonly number[];
  readonly logits: Float32Array; // [positions, vocab]: one per row, or 1 + drafts for a row that verified drafts
  /** Logits positions of each row, when some row verified drafts; absent: one per row. */
  readonly numPositions?: Int32Array; // [rows]
  readonly vocabSize: number;
  readonly decodeMs: number;
  readonly prefillMs: number;
  /** Prefill rows whose image prefix came from the prefix cache. */
  readonly prefixCached?: readonly number[];
  /** With graph 'attention': each row's attention at the position that produced its token, rows as in rowIds. */
  readonly attention?: StepAttention;
  /** With graph 'heads': the Medusa heads' logits at the same positions as `logits`, [positions, heads, vocab]. */
  readonly headLogits?: Float32Array;
  /** Slots the batched cache holds now (rows × width, plus cross-attention rows), padding included. */
  readonly numCachedTokens: number;
}

/** What the engine needs from a model runner; tests may drive the engine with a fake one. */
export interface ModelRunner {
  execute(plan: RunnerPlan): Promise<RunnerResult>;
  /** Forget the batch (after a failed step). */
  reset(): void;
}
