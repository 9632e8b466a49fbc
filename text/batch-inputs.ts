// Per-step decoder inputs for a batch of rows with left padding, as plain Int32Arrays.
// The rows' real tokens are right-aligned so every row's next token lands in the same
// column; attention_mask hides the padding and position_ids count real tokens only.

export interface RowsState {
  batchSize: number;
  /** Columns so far (past + current). */
  width: number;
  attentionMask: Int32Array; // [batch, width]
  /** Position the next token of each row will take. */
  nextPosition: Int32Array; // [batch]
}

export interface StepTokens {
  inputIds: Int32Array; // [batch, seq]
  seqLength: number;
  attentionMask: Int32Array; // [batch, past + seq]
  positionIds: Int32Array; // [batch, seq]
}

/** The prefill step: prompts of different lengths, left-padded to the longest. */
export function prefillStep(prompts: readonly Int32Array[], padId: number): { step: StepTokens; state: RowsState } {
  const batchSize = prompts.length;
  const width = Math.max(...prompts.map((p) => p.length));
  if (batchSize === 0 || width === 0) throw new Error('prefill needs at least one non-empty prompt');
  const inputIds = new Int32Array(batchSize * width).fill(padId);
  const attentionMask = new Int32Array(batchSize * width);
  const positionIds = new Int32Array(batchSize * width);
  const nextPosition = new Int32Array(batchSize);
  prompts.forEach((prompt, row) => {
    const pad = width - prompt.length;
    inputIds.set(prompt, row * width + pad);
    for (let j = 0; j < prompt.length; j++) {
      attentionMask[row * width + pad + j] = 1;
      positionIds[row * width + pad + j] = j; // pads keep position 0, as cumsum(mask)-1 clamped
    }
    nextPosition[row] = prompt.length;
  });
  return { step: { inputIds, seqLength: width, attentionMask, positionIds }, state: { batchSize, width, attentionMask, nextPosition } };
}

/**
 * A prefill after a past every row shares the length of (a cached image prefix): the
 * rows' remaining tokens, left-padded among themselves after the past columns, positions
 * continuing from the past. The padding leaves a masked hole between past and tokens.
 */
export function prefillAfterPast(prompts: readonly Int32Array[], pastLength: number, padId: number): { step: StepTokens; state: RowsState } {
  const { step, state } = prefillStep(prompts, padId);
  const { batchSize, width } = state;
  const total = pastLength + width;
  const attentionMask = new Int32Array(batchSize * total); // [batch, past + width]
  for (let row = 0; row < batchSize; row++) {
    attentionMask.fill(1, row * total, row * total + pastLength);
    attentionMask.set(state.attentionMask.subarray(row * width, (row + 1) * width), row * total + pastLength);
  }
  const positionIds = step.positionIds.map((p, i) => (step.attentionMask[i] ? p + pastLength : 0));
  const nextPosition = state.nextPosition.map((p) => p + pastLength);
  return { step: { ...step, attentionMask, positionIds }, state: { batchSize, width: total, attentionMask, nextPosition } };
}

/** One new token per row, appended as a new column. */
export function decodeStep(state: RowsState, tokens: Int32Array): { step: StepTokens; state: RowsState } {
  const { batchSize, width } = state;
  if (tokens.length !== batchSize) throw new Error(`decodeStep: ${tokens.length} tokens for ${batchSize} rows`);
  const attentionMask = new Int32Array(batchSize * (width + 1));
  for (let row = 0; row < batchSize; row++) {
    attentionMask.set(state.attentionMask.subarray(row * width, (row + 1) * width), row * (width + 1));
    attentionMask[row * (width + 1) + width] = 1;
  }
  const positionIds = state.nextPosition.slice();
  const nextPosition = state.nextPosition.map((p) => p + 1);
  return {
    step: { inputIds: tokens.slice(), seqLength: 1, attentionMask, positionIds },
    state: { batchSize, width: width + 1, attentionMask, nextPosition },
  };
}

/** Leading columns none of `rows` (default: all) attends to (all-zero mask): safe to drop from the state and the cache. */
export function numLeadingPadColumns(state: RowsState, rows?: readonly number[]): number {
  const { width, attentionMask } = state;
  const picked = rows ?? Array.from({ length: state.batchSize }, (_, i) => i);
  let column = width;
  for (const row of picked) {
    const first = attentionMask.subarray(row * width, (row + 1) * width).indexOf(1);
    column = Math.min(column, first < 0 ? width : first);
  }
  return column;
}

/** Rows of one state taken into assembleStates (the mask side of KvCache.assemble). */
export interface StateRowSource {
  readonly state: RowsState;
  readonly rows: readonly number[];
  readonly fromColumn: number;
}

/** Kept rows of several states, their first `fromColumn` columns dropped, left-padded with zeros to the widest. */
export function assembleStates(sources: readonly StateRowSource[]): RowsState {
  const width = Math.max(...sources.map((s) => s.state.width - s.fromColumn));
  const batchSize = sources.reduce((n, s) => n + s.rows.length, 0);
  const attentionMask = new Int32Array(batchSize * width); // [batch, width]
  const nextPosition = new Int32Array(batchSize);
  let out = 0;
  for (const { state, rows, fromColumn } of sources) {
    const kept = state.width - fromColumn;
    for (const row of rows) {
      attentionMask.set(state.attentionMask.subarray(row * state.width + fromColumn, (row + 1) * state.width), out * width + width - kept);
      nextPosition[out++] = state.nextPosition[row];
    }
  }
  return { batchSize, width, attentionMask, nextPosition };
}
