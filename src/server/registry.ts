// The models a server serves: each is loaded in the background (the server answers
// /health and a 503 /ready meanwhile) and observed for metrics. Resolvers only see
// `generate(modelId, request, hooks)`; each model's engine bounds its own line.
import type { ModelSpec } from '../config/config.ts';
import { IrisError, type GenerateHooks, type GenerationRequest, type GenerationResult, type Generator, type Task } from '../contract/types.ts';
import type { EngineStats } from '../engine/engine.ts';
import type { TaskTemplates } from '../../fusion/prompts.ts';
import { isRemoteDir } from '../config/remote-model.ts';

/** What Iris knows of a remote model's engine: no local gauges, only its own requests to it. */
export interface RemoteModelStats {
  /** The model name the remote serves (after # in the entry). */
  readonly name: string;
  /** Generations sent to the remote and not finished yet. */
  readonly inFlight: number;
}

/** A model ready to serve: what generates, the tasks its folder has templates for, and its engine's gauges. */
export interface LoadedModel {
  readonly generator: Generator;
  readonly tasks: readonly Task[];
  /** The model can give attention maps (default false). */
  readonly attention?: boolean;
  /** How the image reaches the decoder. */
  readonly family?: 'cross-attention' | 'joint';
  /** The folder's prompt templates, when known (the OpenAI routes match questions against them). */
  readonly templates?: TaskTemplates;
  readonly stats?: () => EngineStats;
  /** What is degraded, if anything (e.g. a draft model that failed to load). */
  readonly detail?: string;
  /** Models that depend on something outside (a remote engine): whether it answers now. Absent: always healthy. */
  readonly health?: () => { readonly isHealthy: boolean; readonly detail: string | undefined };
  /** A remote model's figures (instead of `stats`: there is no local engine). */
  readonly remote?: () => RemoteModelStats;
  /** Stops what the model runs in the background (health probes). */
  readonly release?: () => Promise<void>;
}

export type LoadModel = (spec: ModelSpec) => Promise<LoadedModel>;
export type ModelState = 'loading' | 'ready' | 'failed';


export interface ModelStatus {
  readonly id: string;
  /** local: an ONNX folder on this replica's engine; remote: an OpenAI-compatible API. */
  readonly kind: 'local' | 'remote';
  /** The ONNX variant; undefined for a remote model (its weights are not Iris's to see). */
  readonly dtype: string | undefined;
  /** None until the model is loaded. */
  readonly tasks: readonly Task[];
  readonly attention: boolean;
  readonly family: 'cross-attention' | 'joint' | undefined;
  readonly templates: TaskTemplates | undefined;
  readonly state: ModelState;
  /** False while a ready model's remote does not answer its health probe. */
  readonly healthy: boolean;
  readonly engine: EngineStats | undefined;
  /** A loaded remote model's figures; undefined for a local one (or while loading). */
  readonly remote: RemoteModelStats | undefined;
  /** Why it failed, or what is degraded while it serves. */
  readonly detail?: string;
}

export interface GenerationOutcome {
  readonly model: string;
  readonly task: Task;
  /** 'ok' or the IrisError code; 'INTERNAL' for anything else. */
  readonly outcome: string;
  readonly seconds: number;
  /** From the request reaching the registry to the first decoded piece, if there was one. */
  readonly firstTokenSeconds?: number;
  readonly result?: GenerationResult;
}

export interface ModelRegistryOptions {
  readonly specs: readonly ModelSpec[];
  readonly load: LoadModel;
  readonly onOutcome?: (outcome: GenerationOutcome) => void;
}

export interface ModelRegistry {
  readonly defaultModel: string;
  /** Resolves when every model is loaded; rejects with the first load failure. */
  readonly loaded: Promise<void>;
  /** Resolves when every load has finished, loaded or failed, with each model's status. */
  readonly settled: Promise<ModelStatus[]>;
  /** Nothing is loading any more and at least one model serves (failed ones are listed as such). */
  isReady(): boolean;
  list(): ModelStatus[];
  generate(modelId: string | null | undefined, request: GenerationRequest, hooks?: GenerateHooks): Promise<GenerationResult>;
}

interface Entry {
  readonly spec: ModelSpec;
  readonly model: Promise<LoadedModel>;
  state: ModelState;
  loaded: LoadedModel | undefined;
  failure: string | undefined;
  /** Settles (never rejects) once `model` has. */
  readonly settled: Promise<void>;
}

function createEntry(spec: ModelSpec, options: ModelRegistryOptions): Entry {
  const model = options.load(spec);
  const entry: Entry = {
    spec,
    model,
    state: 'loading',
    loaded: undefined,
    failure: undefined,
    settled: model.then(
      (loaded) => {
        entry.state = 'ready';
        entry.loaded = loaded;
      },
      (error: unknown) => {
        entry.state = 'failed';
        entry.failure = error instanceof Error ? error.message : String(error);
      },
    ),
  };
  return entry;
}

function codeOf(error: unknown): string {
  return error instanceof IrisError ? error.code : 'INTERNAL';
}

export function createModelRegistry(options: ModelRegistryOptions): ModelRegistry {
  if (options.specs.length === 0) throw new Error('a model registry needs at least one model spec');
  const entries = new Map(options.specs.map((spec) => [spec.id, createEntry(spec, options)]));
  const defaultModel = options.specs[0].id;

  const lookup = (modelId: string | null | undefined): Entry => {
    const entry = entries.get(modelId ?? defaultModel);
    if (!entry) throw new IrisError('MODEL_NOT_FOUND', `no model "${modelId}"; models: ${[...entries.keys()].join(', ')}`);
    return entry;
  };

  const run = async (entry: Entry, request: GenerationRequest, hooks: GenerateHooks | undefined): Promise<GenerationResult> => {
    const queuedAt = performance.now();
    await entry.settled;
    if (!entry.loaded) throw new IrisError('MODEL_UNAVAILABLE', `model "${entry.spec.id}" failed to load; the other models serve`);
    const { generator } = entry.loaded;
    const waitedMs = performance.now() - queuedAt;
    const result = await generator.generate(request, hooks);
    // Time spent waiting for the model to load is queueing the Generator cannot see.
    const timings = { ...result.timings, queueMs: result.timings.queueMs + waitedMs, totalMs: result.timings.totalMs + waitedMs };
    return { ...result, timings };
  };

  const loaded = Promise.all([...entries.values()].map((e) => e.model)).then(() => undefined);
  // Marked handled so a server that only polls isReady() does not crash on a failed load.
  loaded.catch(() => undefined);
  const list = (): ModelStatus[] =>
    [...entries.values()].map((e) => ({
      id: e.spec.id,
      kind: isRemoteDir(e.spec.dir) ? ('remote' as const) : ('local' as const),
      dtype: isRemoteDir(e.spec.dir) ? undefined : e.spec.dtype,
      tasks: e.loaded?.tasks ?? [],
      attention: e.loaded?.attention ?? false,
      family: e.loaded?.family,
      templates: e.loaded?.templates,
      state: e.state,
      healthy: e.loaded?.health?.().isHealthy ?? true,
      engine: e.loaded?.stats?.(),
      remote: e.loaded?.remote?.(),
      detail: e.failure ?? e.loaded?.health?.().detail ?? e.loaded?.detail,
    }));
  const states = (): ModelState[] => [...entries.values()].map((e) => e.state);
  const isServing = (e: Entry): boolean => e.state === 'ready' && (e.loaded?.health?.().isHealthy ?? true);
  return {
    defaultModel,
    loaded,
    settled: Promise.all([...entries.values()].map((e) => e.settled)).then(list),
    // A remote that does not answer takes its model out of the count: a replica whose only model is remote is not ready without it.
    isReady: () => !states().includes('loading') && [...entries.values()].some(isServing),
    list,
    async generate(modelId, request, hooks) {
      const entry = lookup(modelId);
      const started = performance.now();
      let firstTokenSeconds: number | undefined;
      // Always observe deltas (even for non-streamed requests) to measure time to first token.
      const observed: GenerateHooks = {
        signal: hooks?.signal,
        onDelta: (delta) => {
          firstTokenSeconds ??= (performance.now() - started) / 1000;
          hooks?.onDelta?.(delta);
        },
      };
      const report = (outcome: string, result?: GenerationResult): void =>
        options.onOutcome?.({ model: entry.spec.id, task: request.task, outcome, seconds: (performance.now() - started) / 1000, firstTokenSeconds, result });
      try {
        const result = await run(entry, request, observed);
        // A generation cut short by its client or deadline is not a success: its partial
        // result stays out of the latency and token figures.
        if (result.finishReason === 'cancelled') report('CANCELLED');
        else report('ok', result);
        return result;
      } catch (error) {
        report(codeOf(error));
        throw error;
      }
    },
  };
}
