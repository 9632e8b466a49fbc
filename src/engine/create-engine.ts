// Loading a model folder into an Engine: the same pieces as the single-request pipeline
// (model, image loader with its embedding cache), plus the batch runner, the KV budget
// and the scheduler. Every option is validated here, once.
import { EmbeddingCache } from '../../vision/embedding-cache.ts';
import { DEFAULTS } from '../config/config.ts';
import { createImageLoader } from '../../vision/image-loader.ts';
import { join } from 'node:path';
import { startEncodeWorkers, type WorkerImageEncoder } from '../../vision/worker-encoder.ts';
import { DEFAULT_MODEL_DIR, encoderPathOf, loadIrisModel, sessionOptionsOf, type IrisModel, type ModelLoadOptions } from '../model/load.ts';
import { IrisError } from '../contract/types.ts';
import { BatchRunner } from './batch-runner.ts';
import { BatchDecoder } from './decoder-batch.ts';
import { DraftModel, findDraftDecoder } from './draft-model.ts';
import { Engine, type StepInfo } from './engine.ts';
import { KvBudget } from './kv-budget.ts';
import type { EngineRequest } from './request.ts';
import { Scheduler } from './scheduler.ts';
import { Speculator, type Drafter, type SpeculationOptions } from './speculator.ts';

export interface EngineOptions extends ModelLoadOptions {
  modelDir?: string;
  /** Reported as each result's `model` (default: the folder name). */
  modelId?: string;
  /** Rows decoded together; 1 turns batching off (one request at a time). Default 32. */
  maxBatchSize?: number;
  /** Requests in line before OVERLOADED. Default 64. */
  maxWaiting?: number;
  /** KV budget in cached token slots. Default: a full batch of rows at the model's longest length. */
  kvCacheTokens?: number;
  /** Tokens prefilled per step. Default: unlimited. */
  maxPrefillTokens?: number;
  maxImagePixels?: number;
  embeddingCacheBytes?: number;
  /** Share (or inspect, in tests) the embedding cache; default: a new one of embeddingCacheBytes. */
  embeddingCache?: EmbeddingCache;
  /**
   * How long an image load waits for company before the encoder runs, in ms. Default 0:
   * loads issued in the same event-loop turn still share a batch (under load, every
   * request read while a decoder step blocked the thread), and the encoder is barely
   * cheaper per image in batches (1.48 vs 1.62 ms on shapes-base), so a timer only
   * added its 1 ms to every request (in-process at 1 client: 109-114 vs 99-101 req/s).
   */
  imageWindowMs?: number;
  /**
   * Decode, preprocess and encode images in a worker thread (default true), so they run
   * on another core while this thread runs decoder steps; false: in this thread.
   */
  imageWorker?: boolean;
  /** How many image worker threads (default 1); a batch of images is split across them. */
  imageWorkers?: number;
  /** Speculative decoding defaults (mode, drafts per step, the batch size above which it pauses). */
  speculative?: Partial<SpeculationOptions>;
  /** The draft model's folder for speculative 'draft' mode. Default: `<modelDir>/draft/`, when present. */
  draftDir?: string;
  /** Drafts from this instead of the draft folder's model (tests wrap one to force rejections). */
  drafter?: Drafter;
  onStep?: (info: StepInfo) => void;
}

/** Used when a folder's config does not say how long its sequences may be. */
const FALLBACK_MAX_POSITIONS = 256;

/**
 * The decoder's intra-op threads when the caller does not say. onnxruntime's default is a
 * thread per core that spin-waits between ops; but the decoder's ops are small (a step of
 * shapes-base is well under a millisecond at one row), session.run blocks this thread
 * anyway, and the other cores are wanted by the image worker, sharp and HTTP. One thread
 * measured faster at 32 clients on 2 cores (in-process: 138 vs 99 req/s).
 */
const DEFAULT_ENGINE_THREADS = 1;

export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const model = await loadIrisModel(options.modelDir ?? DEFAULT_MODEL_DIR, { ...options, threads: options.threads ?? DEFAULT_ENGINE_THREADS });
  let worker: WorkerImageEncoder | undefined;
  try {
    worker = options.imageWorker === false ? undefined : await startImageWorker(model, options);
    return await assembleEngine(withWorker(model, worker), options, worker);
  } catch (error) {
    await worker?.release();
    await model.release();
    throw error;
  }
}

function startImageWorker(model: IrisModel, options: EngineOptions): Promise<WorkerImageEncoder> {
  return startEncodeWorkers({
    encoderPath: encoderPathOf(model.folder, options),
    size: { height: model.encoder.height, width: model.encoder.width },
    // One intra-op thread: the worker's point is to leave this thread's core to the decoder.
    session: sessionOptionsOf({ ...options, threads: 1 }),
    preprocessor: model.folder.preprocessor,
    limits: { maxPixels: options.maxImagePixels ?? DEFAULTS.images.maxPixels },
  }, options.imageWorkers ?? 1);
}

/** The model whose release() also stops the image worker (Engine.release frees the model). */
function withWorker(model: IrisModel, worker: WorkerImageEncoder | undefined): IrisModel {
  if (!worker) return model;
  return { ...model, release: async () => void (await Promise.all([worker.release(), model.release()])) };
}

async function assembleEngine(model: IrisModel, options: EngineOptions, worker: WorkerImageEncoder | undefined): Promise<Engine> {
  const maxBatchSize = options.maxBatchSize ?? 32;
  const crossTokensPerRow = model.runner.layout.naming === 'encoder-decoder' ? await countPatches(model) : 0;
  const longestRow = (model.folder.maxPositions ?? FALLBACK_MAX_POSITIONS) + crossTokensPerRow;
  const capacityTokens = options.kvCacheTokens ?? maxBatchSize * longestRow;
  if (model.folder.maxPositions !== undefined && capacityTokens < longestRow) {
    throw new RangeError(`kvCacheTokens must be at least ${longestRow} (one row of ${model.folder.maxPositions} positions + ${crossTokensPerRow} image patches), got ${capacityTokens}`);
  }
  const budget = new KvBudget({ capacityTokens, crossTokensPerRow });
  const scheduler = new Scheduler<EngineRequest>({ maxBatchSize, maxWaiting: options.maxWaiting ?? 64, budget, maxPrefillTokens: options.maxPrefillTokens });
  const images = worker
    ? { encodeImages: worker.encodeImages }
    : { encoder: model.encoder, preprocessor: model.folder.preprocessor, limits: { maxPixels: options.maxImagePixels ?? DEFAULTS.images.maxPixels } };
  const loader = createImageLoader({
    ...images,
    cache: options.embeddingCache ?? new EmbeddingCache(options.embeddingCacheBytes ?? 64 * 1024 * 1024),
    maxBatchSize: Math.max(1, Math.min(maxBatchSize, 16)),
    windowMs: options.imageWindowMs ?? 0,
  });
  const runner = new BatchRunner(new BatchDecoder(model.runner, model.folder.ids.pad));
  const loaded = options.drafter ? undefined : await loadDrafter(model, options);
  try {
    const drafter = options.drafter ?? loaded;
    const speculation = { mode: 'off', numDrafts: 4, maxBatchSize: 1, minAcceptanceAtLoad: 0.8, ...options.speculative } as const;
    if (!Number.isInteger(speculation.numDrafts) || speculation.numDrafts < 1 || speculation.numDrafts > 16) throw new RangeError(`speculative numDrafts must be an integer from 1 to 16, got ${speculation.numDrafts}`);
    if (speculation.mode === 'draft' && !drafter) throw new IrisError('MODEL_NOT_FOUND', `speculative 'draft' needs a draft model (<model>/draft/onnx/decoder_model_merged.onnx), and this model has none`);
    const speculator = new Speculator(speculation, drafter);
    return new Engine({ model, loader, runner, scheduler, kvCapacityTokens: capacityTokens, modelId: options.modelId, speculator, onStep: options.onStep });
  } catch (error) {
    await loaded?.release(); // invalid speculative options: the draft session loaded for them is ours to free
    throw error;
  }
}

async function loadDrafter(model: IrisModel, options: EngineOptions): Promise<DraftModel | undefined> {
  const path = await findDraftDecoder(options.draftDir ?? join(model.folder.dir, 'draft'));
  if (!path) {
    if (options.draftDir) throw new RangeError(`draftDir ${options.draftDir} has no onnx/decoder_model_merged.onnx`);
    return undefined;
  }
  return DraftModel.load(path, model.folder.ids.pad, sessionOptionsOf(options));
}

/** Image patches per row, read from the encoder itself (a conv stem may change the grid). */
async function countPatches(model: IrisModel): Promise<number> {
  const { height, width } = model.encoder;
  const [embedding] = await model.encoder.encode([new Float32Array(3 * height * width)]);
  return embedding.numPatches;
}
