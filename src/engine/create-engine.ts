// Loading a model folder into an Engine: the model, the image loader with its embedding
// cache, the batch runner, the KV budget, the scheduler and the speculator, each set up
// from the engine's slice of the config (validated once, by createEngineConfig).
import { EmbeddingCache } from '../../vision/embedding-cache.ts';
import { createImageLoader, encodeInProcess, inThreadWhenIdle, MAX_IMAGES_PER_CALL } from '../../vision/image-loader.ts';
import { join } from 'node:path';
import { startEncodeWorkers, type WorkerImageEncoder } from '../../vision/worker-encoder.ts';
import { createEngineConfig, type EngineConfig, type EngineConfigInput } from '../config/config.ts';
import { DEFAULT_MODEL_DIR, encoderPathOf, loadIrisModel, sessionOptionsOf, type IrisModel } from '../model/load.ts';
import { BatchRunner } from './batch-runner.ts';
import { BatchDecoder } from './decoder-batch.ts';
import { PrefixCache } from './prefix-cache.ts';
import { DraftModel, findDraftDecoder } from './draft-model.ts';
import { Engine, type StepInfo } from './engine.ts';
import { KvBudget } from './kv-budget.ts';
import type { EngineRequest } from './request.ts';
import { Scheduler } from './scheduler.ts';
import { Speculator, type Drafter } from './speculator.ts';
import { modelFingerprint, ResultCache, resultKeyPrefix } from './result-cache.ts';
import { createSharedEmbeddingCache, encoderFingerprint, sharedKeyPrefix, type ByteStore, type SharedEmbeddingCache } from './shared-embeddings.ts';

/** The engine settings (any left out take the config's defaults) and what to run them on. */
export interface EngineOptions extends EngineConfigInput {
  modelDir?: string;
  /** Reported as each result's `model` (default: the folder name). */
  modelId?: string;
  /** Decoder file inside onnx/, e.g. 'decoder_model_merged_quantized.onnx'. */
  decoderFile?: string;
  encoderFile?: string;
  /** Share (or inspect, in tests) the embedding cache; default: a new one of embeddingCacheBytes. */
  embeddingCache?: EmbeddingCache;
  /** The draft model's folder for speculative 'draft' mode. Default: `<modelDir>/draft/`, when present. */
  draftDir?: string;
  /** Drafts from this instead of the draft folder's model (tests wrap one to force rejections). */
  drafter?: Drafter;
  /**
   * Called when the default `<modelDir>/draft/` or `<modelDir>/medusa/` is present but
   * fails to load: the engine then runs without it (speculative 'draft' or 'medusa' off for
   * this model, as if the folder were not there). Without this option such a failure fails
   * the engine.
   */
  onSpeculationFailure?: (mode: 'draft' | 'medusa', error: Error) => void;
  onStep?: (info: StepInfo) => void;
  /**
   * A store shared by replicas (Redis) behind the local embedding cache; keys carry the
   * model id and a fingerprint of the encoder file and preprocessing. Absent: local only.
   */
  sharedEmbeddings?: ByteStore;
  /**
   * Bytes of whole results of deterministic requests kept (greedy, or sampling with a
   * seed): a repeated request is answered without running the model. Default 0: off.
   */
  resultCacheBytes?: number;
  /** The store shared by replicas behind the local result cache (only with resultCacheBytes > 0). */
  sharedResults?: ByteStore;
}

/** Used when a folder's config does not say how long its sequences may be. */
const FALLBACK_MAX_POSITIONS = 256;

export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const config = createEngineConfig(options);
  const files = { decoderFile: options.decoderFile, encoderFile: options.encoderFile };
  const { onSpeculationFailure } = options;
  const onHeadsFailure = onSpeculationFailure && ((error: Error) => onSpeculationFailure('medusa', error));
  const model = await loadIrisModel(options.modelDir ?? DEFAULT_MODEL_DIR, { ...files, threads: config.threads, onHeadsFailure });
  let worker: WorkerImageEncoder | undefined;
  try {
    worker = config.imageWorkers === 0 ? undefined : await startImageWorker(model, config, files);
    const shared = options.sharedEmbeddings ? await sharedCacheOf(model, options.sharedEmbeddings, options.modelId ?? model.folder.id, files) : undefined;
    const results = options.resultCacheBytes ? await resultCacheOf(model, config, options) : undefined;
    return await assembleEngine(withWorker(model, worker), config, options, worker, shared, results);
  } catch (error) {
    await worker?.release();
    await model.release();
    throw error;
  }
}

function startImageWorker(model: IrisModel, config: EngineConfig, files: { encoderFile?: string }): Promise<WorkerImageEncoder> {
  return startEncodeWorkers({
    encoderPath: encoderPathOf(model.folder, files),
    size: { height: model.encoder.height, width: model.encoder.width },
    // One intra-op thread: the worker's point is to leave this thread's core to the decoder.
    session: sessionOptionsOf({ threads: 1 }),
    preprocessor: model.folder.preprocessor,
    limits: { maxPixels: config.maxPixels },
  }, config.imageWorkers);
}

/** The model whose release() also stops the image worker (Engine.release frees the model). */
function withWorker(model: IrisModel, worker: WorkerImageEncoder | undefined): IrisModel {
  if (!worker) return model;
  return { ...model, release: async () => void (await Promise.all([worker.release(), model.release()])) };
}

async function sharedCacheOf(model: IrisModel, store: ByteStore, modelId: string, files: { encoderFile?: string }): Promise<SharedEmbeddingCache> {
  const { height, width } = model.encoder;
  const fingerprint = await encoderFingerprint(encoderPathOf(model.folder, files), { height, width, preprocessor: model.folder.preprocessor });
  return createSharedEmbeddingCache(store, sharedKeyPrefix(modelId, fingerprint));
}

/** Keys carry the model id and a fingerprint of its folder's files and the settings that change outputs. */
async function resultCacheOf(model: IrisModel, config: EngineConfig, options: EngineOptions): Promise<ResultCache> {
  const { decoderFile, encoderFile, draftDir } = options;
  const fingerprint = await modelFingerprint(model.folder.dir, { decoderFile, encoderFile, draftDir, speculative: config.speculative, speculativeDrafts: config.speculativeDrafts });
  return new ResultCache({ maxBytes: options.resultCacheBytes ?? 0, store: options.sharedResults, prefix: resultKeyPrefix(options.modelId ?? model.folder.id, fingerprint) });
}

async function assembleEngine(model: IrisModel, config: EngineConfig, options: EngineOptions, worker: WorkerImageEncoder | undefined, shared: SharedEmbeddingCache | undefined, results: ResultCache | undefined): Promise<Engine> {
  const { maxBatchSize, maxQueued } = config;
  const crossTokensPerRow = model.runner.layout.naming === 'encoder-decoder' ? await countPatches(model) : 0;
  const longestRow = (model.folder.maxPositions ?? FALLBACK_MAX_POSITIONS) + crossTokensPerRow;
  const capacityTokens = config.kvCacheTokens || maxBatchSize * longestRow;
  if (model.folder.maxPositions !== undefined && capacityTokens < longestRow) {
    throw new RangeError(`kvCacheTokens must be at least ${longestRow} (one row of ${model.folder.maxPositions} positions + ${crossTokensPerRow} image patches), got ${capacityTokens}`);
  }
  const budget = new KvBudget({ capacityTokens, crossTokensPerRow });
  const scheduler = new Scheduler<EngineRequest>({ maxBatchSize, maxQueued, budget });
  const inProcess = { encoder: model.encoder, preprocessor: model.folder.preprocessor, limits: { maxPixels: config.maxPixels } };
  // With a worker, a lone image that arrives while the decoder has nothing to do is encoded here (image-loader.ts).
  const images = worker ? { encodeImages: inThreadWhenIdle(worker.encodeImages, encodeInProcess(inProcess), () => !scheduler.hasRowsToRun) } : inProcess;
  const cache = options.embeddingCache ?? new EmbeddingCache(config.embeddingCacheBytes);
  const loader = createImageLoader({
    ...images,
    cache,
    secondLevel: shared,
    maxBatchSize: Math.min(maxBatchSize, MAX_IMAGES_PER_CALL),
    windowMs: config.imageWindowMs,
  });
  const { family } = model.folder;
  const prefixCache = family.kind === 'joint' && config.prefixCacheTokens > 0 ? new PrefixCache(config.prefixCacheTokens) : undefined;
  const runner = new BatchRunner(new BatchDecoder(model.runner, model.folder.ids.pad, model.attentionRunner, model.headsRunner), prefixCache && family.kind === 'joint' ? { cache: prefixCache, numTokens: family.numImageTokens } : undefined);
  const loaded = options.drafter ? undefined : await loadDrafter(model, config, options);
  try {
    const drafter = options.drafter ?? loaded;
    // A default of 'draft' or 'medusa' whose model files failed to load falls back to plain decoding.
    const numHeads = model.headsRunner?.numHeads ?? 0;
    const isMissing = (config.speculative === 'draft' && !drafter) || (config.speculative === 'medusa' && numHeads === 0);
    const speculation = isMissing && options.onSpeculationFailure ? { ...config, speculative: 'off' as const } : config;
    const speculator = new Speculator(speculation, drafter, numHeads);
    return new Engine({ model, loader, runner, scheduler, kvCapacityTokens: capacityTokens, modelId: options.modelId, speculator, prefixCache, resultCache: results, onStep: options.onStep, embeddingCache: () => ({ local: cache.stats(), shared: shared?.stats() }) });
  } catch (error) {
    await loaded?.release(); // the draft session loaded here is ours to free when the engine cannot be built
    throw error;
  }
}

async function loadDrafter(model: IrisModel, config: EngineConfig, options: EngineOptions): Promise<DraftModel | undefined> {
  const path = await findDraftDecoder(options.draftDir ?? join(model.folder.dir, 'draft'));
  if (!path) {
    if (options.draftDir) throw new RangeError(`draftDir ${options.draftDir} has no onnx/decoder_model_merged.onnx`);
    return undefined;
  }
  try {
    return await DraftModel.load(path, model.folder.ids.pad, sessionOptionsOf({ threads: config.threads }));
  } catch (error) {
    if (options.draftDir || !options.onSpeculationFailure) throw error;
    options.onSpeculationFailure('draft', error instanceof Error ? error : new Error(String(error)));
    return undefined;
  }
}

/** Image patches per row, read from the encoder itself (a conv stem may change the grid). */
async function countPatches(model: IrisModel): Promise<number> {
  const { height, width } = model.encoder;
  const [embedding] = await model.encoder.encode([new Float32Array(3 * height * width)]);
  return embedding.numPatches;
}
