// A Generator for single requests (and uniform batches of them): load a model folder,
// then image → embedding → prompt → decode. The continuous-batching engine replaces the
// decode loop, not these pieces.
import { buildPromptIds, promptText } from '../../fusion/prompts.ts';
import { resolveOptions, type ResolvedOptions } from '../../text/sampling/options.ts';
import { EmbeddingCache } from '../../vision/embedding-cache.ts';
import { DEFAULTS } from '../config/config.ts';
import { createImageLoader, type EmbeddingLease, type ImageLoader } from '../../vision/image-loader.ts';
import { decodeRows, type DecodeTimings } from './pipeline-decode.ts';
import { DEFAULT_MODEL_DIR, loadIrisModel, type IrisModel, type ModelLoadOptions } from '../model/load.ts';
import type { RowDecoder, RowSpec } from './row-decoder.ts';
import {
  IrisError, type GenerateHooks, type GenerationRequest, type GenerationResult, type Generator, type Task,
} from '../contract/types.ts';

export interface PipelineOptions extends ModelLoadOptions {
  modelDir?: string;
  /** Decompression-bomb guard: largest width × height decoded. */
  maxImagePixels?: number;
  embeddingCacheBytes?: number;
  /** false: recompute the full sequence every step (for benchmarks and tests). */
  useKvCache?: boolean;
  /** Rows decoded together by generateBatch. */
  maxBatchRows?: number;
}

const TASKS: ReadonlySet<Task> = new Set(['caption', 'answer', 'generate']);

/** Validate a request and build its decoder row; throws IrisError before any image work. */
export function prepareRow(model: IrisModel, request: GenerationRequest): Omit<RowSpec, 'imageIndex'> {
  if (!TASKS.has(request.task)) throw new IrisError('INVALID_OPTIONS', `task must be one of caption, answer, generate; got ${JSON.stringify(request.task)}`);
  if (!(request.image instanceof Uint8Array)) throw new IrisError('BAD_IMAGE', 'image must be bytes (Uint8Array)');
  const resolved = resolveOptions(request.options);
  const text = promptText(request, model.folder.templates, model.specialTokens);
  const promptIds = buildPromptIds(text, model.tokenizer, model.folder.ids.decoderStart);
  return { promptIds, options: capToPositions(resolved, promptIds.length, model.folder.maxPositions) };
}

/** prompt + generated must fit the decoder's position embeddings. */
export function capToPositions(options: ResolvedOptions, promptLength: number, maxPositions: number | undefined): ResolvedOptions {
  if (maxPositions === undefined) return options;
  const room = maxPositions - promptLength;
  if (room < 1) throw new IrisError('PROMPT_TOO_LONG', `the prompt is ${promptLength} tokens; this model reads at most ${maxPositions} positions, leaving no room to generate`);
  const maxNewTokens = Math.min(options.maxNewTokens, room);
  return Object.freeze({ ...options, maxNewTokens, minNewTokens: Math.min(options.minNewTokens, maxNewTokens) });
}

export class Pipeline implements Generator {
  readonly modelId: string;

  private constructor(
    readonly model: IrisModel,
    private readonly loader: ImageLoader,
    private readonly options: PipelineOptions,
  ) {
    this.modelId = model.folder.id;
  }

  static async load(options: PipelineOptions = {}): Promise<Pipeline> {
    const model = await loadIrisModel(options.modelDir ?? DEFAULT_MODEL_DIR, options);
    const loader = createImageLoader({
      encoder: model.encoder,
      preprocessor: model.folder.preprocessor,
      cache: new EmbeddingCache(options.embeddingCacheBytes ?? DEFAULTS.models.embeddingCacheBytes),
      limits: { maxPixels: options.maxImagePixels ?? DEFAULTS.images.maxPixels },
      windowMs: 0,
    });
    return new Pipeline(model, loader, options);
  }

  /** Aborting before the start throws CANCELLED; aborting mid-way returns the partial text with finishReason 'cancelled'. */
  async generate(request: GenerationRequest, hooks: GenerateHooks = {}): Promise<GenerationResult> {
    const started = performance.now();
    if (hooks.signal?.aborted) throw new IrisError('CANCELLED', 'request was cancelled before it started');
    const spec = { ...prepareRow(this.model, request), imageIndex: 0, onDelta: hooks.onDelta };
    const lease = await this.loader.load(request.image);
    try {
      const imageMs = performance.now() - started;
      const { rows, timings } = await decodeRows(this.model, [lease.embedding], [spec], { useKvCache: this.options.useKvCache, signal: hooks.signal });
      return this.toResult(rows[0], lease, { imageMs, ...timings }, started);
    } finally {
      lease.release();
    }
  }

  /** Many requests decoded together in batches of rows; a failing request yields its IrisError in place. */
  async generateBatch(requests: readonly GenerationRequest[]): Promise<(GenerationResult | IrisError)[]> {
    const started = performance.now();
    const specs = requests.map((r) => attempt(() => prepareRow(this.model, r)));
    const leases = await Promise.all(requests.map((r, i) => {
      const spec = specs[i];
      return spec instanceof IrisError ? spec : this.loader.load(r.image).catch(toIrisError);
    }));
    const imageMs = performance.now() - started;
    const results: (GenerationResult | IrisError)[] = leases.map((l) => (l instanceof IrisError ? l : new IrisError('CANCELLED', 'not run')));
    const ready = leases.flatMap((l, i) => (l instanceof IrisError ? [] : [i]));
    const chunkSize = this.options.maxBatchRows ?? 64;
    try {
      for (let s = 0; s < ready.length; s += chunkSize) {
        const chunk = ready.slice(s, s + chunkSize);
        const chunkLeases = chunk.map((i) => leases[i] as EmbeddingLease);
        const rowSpecs = chunk.map((i, j) => ({ ...(specs[i] as Omit<RowSpec, 'imageIndex'>), imageIndex: j }));
        const { rows, timings } = await decodeRows(this.model, chunkLeases.map((l) => l.embedding), rowSpecs, { useKvCache: this.options.useKvCache });
        chunk.forEach((i, j) => (results[i] = this.toResult(rows[j], chunkLeases[j], { imageMs, ...timings }, started)));
      }
    } finally {
      for (const lease of leases) if (!(lease instanceof IrisError)) lease.release();
    }
    return results;
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
    };
  }

  async release(): Promise<void> {
    await this.model.release();
  }
}

export function createPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  return Pipeline.load(options);
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
