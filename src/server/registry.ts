// The models a server serves: each is loaded in the background (the server answers
// /health and a 503 /ready meanwhile), admitted through its own Admission, and observed
// for metrics. Resolvers only see `generate(modelId, request, hooks)`.
import type { ModelSpec } from '../config/config.ts';
import { IrisError, type GenerateHooks, type GenerationRequest, type GenerationResult, type Generator, type Task } from '../contract/types.ts';
import type { EngineStats } from '../engine/engine.ts';
import { createAdmission, type Admission, type AdmissionStats } from './admission.ts';

export type LoadModel = (spec: ModelSpec) => Promise<Generator>;
export type ModelState = 'loading' | 'ready' | 'failed';

export const ALL_TASKS: readonly Task[] = ['caption', 'answer', 'generate'];


export interface ModelStatus {
  readonly id: string;
  readonly dtype: string;
  readonly tasks: readonly Task[];
  readonly state: ModelState;
  readonly admission: AdmissionStats;
  readonly engine: EngineStats | undefined;
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
  readonly maxInFlight: number;
  readonly maxQueued: number;
  readonly load: LoadModel;
  readonly onOutcome?: (outcome: GenerationOutcome) => void;
}

export interface ModelRegistry {
  readonly defaultModel: string;
  /** Resolves when every model is loaded; rejects with the first load failure. */
  readonly loaded: Promise<void>;
  isReady(): boolean;
  list(): ModelStatus[];
  generate(modelId: string | null | undefined, request: GenerationRequest, hooks?: GenerateHooks): Promise<GenerationResult>;
}

interface Entry {
  readonly spec: ModelSpec;
  readonly admission: Admission;
  readonly generator: Promise<Generator>;
  state: ModelState;
  loadedGenerator: Generator | undefined;
}

function hasStats(g: Generator | undefined): g is Generator & { stats(): EngineStats } {
  return typeof (g as { stats?: unknown } | undefined)?.stats === 'function';
}

function createEntry(spec: ModelSpec, options: ModelRegistryOptions): Entry {
  const entry: Entry = {
    spec,
    admission: createAdmission(options),
    generator: options.load(spec),
    state: 'loading',
    loadedGenerator: undefined,
  };
  entry.generator.then(
    (g) => {
      entry.state = 'ready';
      entry.loadedGenerator = g;
    },
    () => {
      entry.state = 'failed';
    },
  );
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
    const generator = await entry.generator;
    const work = async (): Promise<GenerationResult> => {
      const waitedMs = performance.now() - queuedAt;
      const result = await generator.generate(request, hooks);
      // Time spent waiting here is queueing the Generator cannot see.
      const timings = { ...result.timings, queueMs: result.timings.queueMs + waitedMs, totalMs: result.timings.totalMs + waitedMs };
      return { ...result, timings };
    };
    // An engine (a Generator reporting stats) bounds its own line and KV budget; a second
    // queue in front of it would cap its batch at maxInFlight.
    return hasStats(generator) ? work() : entry.admission.run(work, hooks?.signal);
  };

  const loaded = Promise.all([...entries.values()].map((e) => e.generator)).then(() => undefined);
  // Marked handled so a server that only polls isReady() does not crash on a failed load.
  loaded.catch(() => undefined);
  return {
    defaultModel,
    loaded,
    isReady: () => [...entries.values()].every((e) => e.state === 'ready'),
    list: () =>
      [...entries.values()].map((e) => ({
        id: e.spec.id,
        dtype: e.spec.dtype,
        tasks: ALL_TASKS,
        state: e.state,
        admission: e.admission.stats(),
        engine: hasStats(e.loadedGenerator) ? e.loadedGenerator.stats() : undefined,
      })),
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
        report('ok', result);
        return result;
      } catch (error) {
        report(codeOf(error));
        throw error;
      }
    },
  };
}
