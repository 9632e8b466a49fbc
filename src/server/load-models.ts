// The LoadModel the server uses: each model runs on a continuous-batching Engine, which
// bounds its own line and KV budget, and serves the tasks its folder has templates for.
import { resolve } from 'node:path';
import { tasksOf } from '../../fusion/prompts.ts';
import type { EngineConfig } from '../config/config.ts';
import { createEngine } from '../engine/create-engine.ts';
import type { Engine } from '../engine/engine.ts';
import { checkModelFolder, onnxFiles } from '../model/files.ts';
import type { LoadModel } from './registry.ts';
import type { ByteStore } from '../engine/shared-embeddings.ts';

export interface EngineLoaderOptions {
  /** The engine slice of the config (engineConfigOf), the same for every model. */
  readonly engine: EngineConfig;
  /** Called with each loaded engine (tests and benchmarks observe it). */
  readonly onEngine?: (modelId: string, engine: Engine) => void;
  /** Where a model's degraded parts are reported; console.warn by default. */
  readonly warn?: (message: string) => void;
  /** The embedding store shared by replicas (createRedisStore), behind each model's local cache. */
  readonly sharedEmbeddings?: ByteStore;
}

export function createEngineLoader(options: EngineLoaderOptions): LoadModel {
  const warn = options.warn ?? ((message: string) => console.warn(`iris: warning: ${message}`));
  return async (spec) => {
    await checkModelFolder(spec);
    const details: string[] = [];
    // An optional part that fails degrades this model instead of stopping the server.
    const onDraftFailure = (error: Error): void => {
      const detail = `speculative 'draft' is off: draft/ failed to load (${error.message})`;
      details.push(detail);
      warn(`model ${spec.id}: ${detail}`);
    };
    const engine = await createEngine({ ...options.engine, modelDir: resolve(spec.dir), modelId: spec.id, ...onnxFiles(spec.dtype), onDraftFailure, sharedEmbeddings: options.sharedEmbeddings });
    options.onEngine?.(spec.id, engine);
    const { templates } = engine.model.folder;
    return { generator: engine, tasks: tasksOf(templates), templates, attention: engine.model.attentionRunner !== undefined, family: engine.model.folder.family.kind, stats: () => engine.stats(), detail: details.join('; ') || undefined };
  };
}
