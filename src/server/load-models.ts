// The LoadModel the server uses: each model runs on a continuous-batching Engine, which
// bounds its own line and KV budget, and serves the tasks its folder has templates for;
// an `openai+http://…#name` entry runs on a remote OpenAI-compatible API instead.
import { resolve } from 'node:path';
import { tasksOf } from '../../fusion/prompts.ts';
import type { EngineConfig } from '../config/config.ts';
import { createEngine } from '../engine/create-engine.ts';
import type { Engine } from '../engine/engine.ts';
import { checkModelFolder, onnxFiles } from '../model/files.ts';
import type { LoadedModel, LoadModel } from './registry.ts';
import type { ModelSpec } from '../config/config.ts';
import { isRemoteDir, parseRemoteEndpoint } from '../config/remote-model.ts';
import { RemoteOpenAIGenerator } from '../engine/remote-openai.ts';
import { TASKS } from '../contract/types.ts';
import type { TaskTemplates } from '../../fusion/prompts.ts';
import type { ByteStore } from '../engine/shared-embeddings.ts';

export interface EngineLoaderOptions {
  /** The engine slice of the config (engineConfigOf), the same for every model. */
  readonly engine: EngineConfig;
  /** Called with each loaded engine (tests and benchmarks observe it). */
  readonly onEngine?: (modelId: string, engine: Engine) => void;
  /** Where a model's degraded parts are reported; console.warn by default. */
  readonly warn?: (message: string) => void;
  /** How often remote models' health is probed (default REMOTE_PROBE_MS). */
  readonly remoteProbeMs?: number;
  /** The embedding store shared by replicas (createRedisStore), behind each model's local cache. */
  readonly sharedEmbeddings?: ByteStore;
  /** Bytes of results of deterministic requests cached per model (cache.resultCacheBytes); default 0: off. */
  readonly resultCacheBytes?: number;
  /** The result store shared by replicas (the same Redis), behind each model's local result cache. */
  readonly sharedResults?: ByteStore;
}

/** How often a remote model's GET /models is probed for readiness. */
export const REMOTE_PROBE_MS = 2_000;

/**
 * A remote OpenAI-compatible model: loaded once it has been probed (healthy or not, so
 * a remote that is down does not hold requests at 'loading'); /ready follows the probes.
 */
export async function loadRemoteModel(spec: ModelSpec, probeMs = REMOTE_PROBE_MS): Promise<LoadedModel> {
  const endpoint = parseRemoteEndpoint(spec.dir);
  const generator = new RemoteOpenAIGenerator({ modelId: spec.id, endpoint });
  await generator.probe();
  let isProbing = false;
  const timer = setInterval(() => {
    if (isProbing) return;
    isProbing = true;
    void generator.probe().finally(() => (isProbing = false));
  }, probeMs);
  timer.unref();
  const templates = Object.fromEntries(Object.entries(endpoint.templates).filter(([, t]) => t !== undefined)) as TaskTemplates;
  return {
    generator,
    tasks: TASKS.filter((t) => templates[t] !== undefined),
    templates,
    attention: false,
    health: () => generator.currentHealth(),
    remote: () => ({ name: endpoint.model, inFlight: generator.requestsInFlight }),
    release: async () => clearInterval(timer),
  };
}

export function createEngineLoader(options: EngineLoaderOptions): LoadModel {
  const warn = options.warn ?? ((message: string) => console.warn(`iris: warning: ${message}`));
  return async (spec) => {
    if (isRemoteDir(spec.dir)) return loadRemoteModel(spec, options.remoteProbeMs);
    await checkModelFolder(spec);
    const details: string[] = [];
    // An optional part that fails degrades this model instead of stopping the server.
    const onSpeculationFailure = (mode: 'draft' | 'medusa', error: Error): void => {
      const detail = `speculative '${mode}' is off: ${mode}/ failed to load (${error.message})`;
      details.push(detail);
      warn(`model ${spec.id}: ${detail}`);
    };
    const engine = await createEngine({ ...options.engine, modelDir: resolve(spec.dir), modelId: spec.id, ...onnxFiles(spec.dtype), onSpeculationFailure, sharedEmbeddings: options.sharedEmbeddings, resultCacheBytes: options.resultCacheBytes, sharedResults: options.sharedResults });
    options.onEngine?.(spec.id, engine);
    const { templates } = engine.model.folder;
    return { generator: engine, tasks: tasksOf(templates), templates, attention: engine.model.attentionRunner !== undefined, family: engine.model.folder.family.kind, stats: () => engine.stats(), detail: details.join('; ') || undefined };
  };
}
