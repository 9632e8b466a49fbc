// The LoadModel the server uses since issue 5: each model runs on a continuous-batching
// Engine, which admits requests itself (a bounded line, a KV budget), so the registry's
// per-model Admission steps aside for it (see registry.ts).
import { resolve } from 'node:path';
import { createEngine } from '../engine/create-engine.ts';
import type { Engine } from '../engine/engine.ts';
import type { SpeculationOptions } from '../engine/speculator.ts';
import { checkModelFolder, onnxFiles } from '../model/files.ts';
import type { LoadModel } from './registry.ts';

export interface EngineLoaderOptions {
  readonly maxImagePixels: number;
  /** Requests in line per model before OVERLOADED. */
  readonly maxQueued: number;
  /** Rows decoded together; 1 = one request at a time (batching off). */
  readonly maxBatchSize: number;
  /** KV budget in cached tokens; undefined: a full batch at the model's longest rows. */
  readonly kvCacheTokens: number | undefined;
  /** Speculative decoding defaults (mode for requests that do not choose, pause threshold, drafts per step). */
  readonly speculative?: Partial<SpeculationOptions>;
  /** Called with each loaded engine (tests and benchmarks observe it). */
  readonly onEngine?: (modelId: string, engine: Engine) => void;
}

export function createEngineLoader(options: EngineLoaderOptions): LoadModel {
  return async (spec) => {
    await checkModelFolder(spec);
    const engine = await createEngine({
      modelDir: resolve(spec.dir),
      modelId: spec.id,
      maxImagePixels: options.maxImagePixels,
      maxWaiting: options.maxQueued,
      maxBatchSize: options.maxBatchSize,
      kvCacheTokens: options.kvCacheTokens,
      speculative: options.speculative,
      ...onnxFiles(spec.dtype),
    });
    options.onEngine?.(spec.id, engine);
    return engine;
  };
}
