// The "alone" oracle for tests and benchmarks; the server and the CLI generate only on
// the Engine. It decodes requests one at a time (or a fixed batch of them together, rows
// retired as they finish) through the same BatchDecoder as the engine, with none of the
// engine's scheduling, so the engine's output can be held to it. With useKvCache false it
// recomputes the whole sequence every step: the reference the KV cache must match.
import { DEFAULTS } from '../config/config.ts';
import { IrisError, type GenerateHooks, type GenerationRequest, type GenerationResult, type Generator } from '../contract/types.ts';
import { DEFAULT_MODEL_DIR, loadIrisModel, type IrisModel, type ModelLoadOptions } from '../model/load.ts';
import { EmbeddingCache } from '../../vision/embedding-cache.ts';
import type { ImageEmbedding } from '../../vision/encoder.ts';
import { createImageLoader, type EmbeddingLease, type ImageLoader } from '../../vision/image-loader.ts';
import { assemble, BatchDecoder, keepRows, type BatchStep } from './decoder-batch.ts';
import { RowDecoder } from './row-decoder.ts';
import { rowSpecOf } from './row-spec.ts';

export interface ReferenceOptions extends ModelLoadOptions {
  modelDir?: string;
  /** false: recompute the whole sequence every step instead of reading the KV cache. */
  useKvCache?: boolean;
}

interface DecodeTimings {
  prefillMs: number;
  decodeMs: number;
}

/** Rows decoded together by generateBatch. */
const BATCH_ROWS = 64;

export class ReferenceDecoder implements Generator {
  readonly modelId: string;
  private readonly decoder: BatchDecoder;

  private constructor(
    readonly model: IrisModel,
    private readonly loader: ImageLoader,
    private readonly useKvCache: boolean,
  ) {
    this.modelId = model.folder.id;
    this.decoder = new BatchDecoder(model.runner, model.folder.ids.pad, model.attentionRunner);
  }

  static async load(options: ReferenceOptions = {}): Promise<ReferenceDecoder> {
    const model = await loadIrisModel(options.modelDir ?? DEFAULT_MODEL_DIR, options);
    const loader = createImageLoader({
      encoder: model.encoder,
      preprocessor: model.folder.preprocessor,
      cache: new EmbeddingCache(64 * 1024 * 1024),
      limits: { maxPixels: DEFAULTS.images.maxPixels },
      windowMs: 0,
    });
    return new ReferenceDecoder(model, loader, options.useKvCache !== false);
  }

  /** One request alone. Aborting mid-way returns the partial text with finishReason 'cancelled'. */
  async generate(request: GenerationRequest, hooks: GenerateHooks = {}): Promise<GenerationResult> {
    const started = performance.now();
    if (hooks.signal?.aborted) throw new IrisError('CANCELLED', 'request was cancelled before it started');
    const row = this.rowOf(request, hooks.onDelta);
    const lease = await this.loader.load(request.image);
    try {
      const imageMs = performance.now() - started;
      const timings = await this.decodeRows([row], [lease.embedding], hooks.signal);
      return this.toResult(row, lease, { imageMs, ...timings }, started);
    } finally {
      lease.release();
    }
  }

  /** Requests decoded together in batches of rows; a failing request yields its IrisError in place. */
  async generateBatch(requests: readonly GenerationRequest[]): Promise<(GenerationResult | IrisError)[]> {
    const started = performance.now();
    const rows = requests.map((r) => attempt(() => this.rowOf(r)));
    const leases = await Promise.all(requests.map((r, i) => (rows[i] instanceof IrisError ? rows[i] : this.loader.load(r.image).catch(toIrisError))));
    const imageMs = performance.now() - started;
    const results: (GenerationResult | IrisError)[] = leases.map((l) => (l instanceof IrisError ? l : new IrisError('CANCELLED', 'not run')));
    const ready = leases.flatMap((l, i) => (l instanceof IrisError ? [] : [i]));
    try {
      for (let s = 0; s < ready.length; s += BATCH_ROWS) {
        const chunk = ready.slice(s, s + BATCH_ROWS);
        const chunkLeases = chunk.map((i) => leases[i] as EmbeddingLease);
        const chunkRows = chunk.map((i) => rows[i] as RowDecoder);
        const timings = await this.decodeRows(chunkRows, chunkLeases.map((l) => l.embedding));
        chunk.forEach((i, j) => (results[i] = this.toResult(chunkRows[j], chunkLeases[j], { imageMs, ...timings }, started)));
      }
    } finally {
      for (const lease of leases) if (!(lease instanceof IrisError)) lease.release();
    }
    return results;
  }

  async release(): Promise<void> {
    await this.model.release();
  }

  private rowOf(request: GenerationRequest, onDelta?: GenerateHooks['onDelta']): RowDecoder {
    const { tokenizer, folder } = this.model;
    return new RowDecoder(rowSpecOf(this.model, request), tokenizer, folder.ids.eos, onDelta, folder.suppressIds);
  }

  /** Prefill every row, then one token per live row per step until all have finished. */
  private async decodeRows(rows: readonly RowDecoder[], embeddings: readonly ImageEmbedding[], signal?: AbortSignal): Promise<DecodeTimings> {
    const started = performance.now();
    const prefill = (ids: readonly number[], tokens: (row: RowDecoder) => Int32Array): Promise<BatchStep> =>
      this.decoder.prefill(ids.map((id) => ({ id, tokenIds: tokens(rows[id]), embedding: embeddings[id] })));
    let step = await prefill(rows.map((_, i) => i), (row) => row.spec.promptIds);
    const prefillMs = performance.now() - started;
    for (;;) {
      const { batch, logits, vocabSize } = step;
      const live = new Set<number>();
      batch.ids.forEach((id, i) => {
        if (rows[id].accept(logits.subarray(i * vocabSize, (i + 1) * vocabSize))) live.add(id);
      });
      if (live.size === 0) break;
      if (signal?.aborted) {
        for (const id of live) rows[id].finish('cancelled');
        break;
      }
      if (!this.useKvCache) {
        step = await prefill([...live], (row) => row.sequence);
        continue;
      }
      const kept = live.size === batch.ids.length ? batch : assemble([keepRows(batch, (id) => live.has(id))!]);
      step = await this.decoder.decode(kept, Int32Array.from(kept.ids, (id) => rows[id].lastId));
    }
    return { prefillMs, decodeMs: performance.now() - started - prefillMs };
  }

  private toResult(row: RowDecoder, lease: EmbeddingLease, timings: DecodeTimings & { imageMs: number }, started: number): GenerationResult {
    return {
      text: row.text,
      tokens: row.tokens,
      finishReason: row.finishReason ?? 'length',
      usage: { promptTokens: row.spec.promptIds.length, imageTokens: lease.embedding.numPatches, completionTokens: row.tokens.length },
      timings: {
        queueMs: 0,
        imageEncodeMs: timings.imageMs,
        imageCached: lease.cached,
        prefillMs: timings.prefillMs,
        decodeMs: timings.decodeMs,
        totalMs: performance.now() - started,
      },
      model: this.modelId,
      warnings: [...(row.spec.warnings ?? [])],
      confidence: row.confidence,
    };
  }
}

function attempt<T>(fn: () => T): T | IrisError {
  try {
    return fn();
  } catch (err) {
    return toIrisError(err);
  }
}

function toIrisError(err: unknown): IrisError {
  if (err instanceof IrisError) return err;
  return new IrisError('BAD_IMAGE', err instanceof Error ? err.message : String(err));
}
