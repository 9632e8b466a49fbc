// Decoding a batch of rows to completion: prefill once, then one token per row per step,
// retiring finished rows from the batch (and from the KV cache) as they end.
import { gatherEncoderStates, selectEncoderRows } from '../../fusion/conditioning.ts';
import { decodeStep, prefillStep, selectStateRows, type RowsState, type StepTokens } from '../../text/batch-inputs.ts';
import type { EncoderStates } from '../../text/decoder-runner.ts';
import type { KvCache } from '../../text/kv-cache.ts';
import type { ImageEmbedding } from '../../vision/encoder.ts';
import type { IrisModel } from '../model/load.ts';
import { RowDecoder, type RowSpec } from './row-decoder.ts';

export interface DecodeOptions {
  /** false: recompute the whole sequence every step (the reference the KV cache must match). */
  useKvCache?: boolean;
  signal?: AbortSignal;
}

export interface DecodeTimings {
  prefillMs: number;
  decodeMs: number;
}

/** Live batch: `rows[i]` is the decoder behind batch row i. */
interface Batch {
  rows: RowDecoder[];
  state: RowsState;
  cache: KvCache;
  encoder: EncoderStates;
}

export async function decodeRows(
  model: IrisModel,
  embeddings: readonly ImageEmbedding[],
  specs: readonly RowSpec[],
  options: DecodeOptions = {},
): Promise<{ rows: RowDecoder[]; timings: DecodeTimings }> {
  const { tokenizer, folder, runner } = model;
  const rows = specs.map((spec) => new RowDecoder(spec, tokenizer, folder.ids.eos));
  const prefill = prefillStep(rows.map((r) => r.spec.promptIds), folder.ids.pad);
  let batch: Batch = {
    rows,
    state: prefill.state,
    cache: runner.emptyCache(rows.length),
    encoder: gatherEncoderStates(embeddings, specs.map((s) => s.imageIndex)),
  };
  let tokens: StepTokens = prefill.step;
  const started = performance.now();
  let prefillMs = 0;
  while (batch.rows.length > 0) {
    if (options.signal?.aborted) {
      for (const row of batch.rows) row.finish('cancelled');
      break;
    }
    const out = await runner.step({ tokens, encoderStates: batch.encoder, cache: batch.cache });
    if (prefillMs === 0) prefillMs = performance.now() - started;
    const vocab = out.vocabSize;
    const isLive = batch.rows.map((row, i) => row.accept(out.logits.subarray(i * vocab, (i + 1) * vocab)));
    batch = retire({ ...batch, cache: out.cache }, isLive);
    if (batch.rows.length === 0) break;
    ({ tokens, batch } = nextStep(model, batch, options.useKvCache !== false));
  }
  const totalMs = performance.now() - started;
  return { rows, timings: { prefillMs, decodeMs: totalMs - prefillMs } };
}

/** Drop finished rows from every per-row structure, keeping them aligned. */
function retire(batch: Batch, isLive: readonly boolean[]): Batch {
  if (isLive.every(Boolean)) return batch;
  const keep = isLive.flatMap((live, i) => (live ? [i] : []));
  return {
    rows: keep.map((i) => batch.rows[i]),
    state: selectStateRows(batch.state, keep),
    cache: batch.cache.selectRows(keep),
    encoder: selectEncoderRows(batch.encoder, keep),
  };
}

/** With the cache: feed each row's newest token. Without: re-prefill prompt + generated from an empty cache. */
function nextStep(model: IrisModel, batch: Batch, useKvCache: boolean): { tokens: StepTokens; batch: Batch } {
  if (useKvCache) {
    const next = decodeStep(batch.state, Int32Array.from(batch.rows, (r) => r.lastId));
    return { tokens: next.step, batch: { ...batch, state: next.state } };
  }
  const prefill = prefillStep(batch.rows.map((r) => r.sequence), model.folder.ids.pad);
  return { tokens: prefill.step, batch: { ...batch, state: prefill.state, cache: model.runner.emptyCache(batch.rows.length) } };
}
