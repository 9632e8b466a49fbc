// A test double for the Generator contract: emits a fixed text one word at a time,
// honours the abort signal between steps like the real decode loop, and records what it
// was asked. The line's errors (OVERLOADED, queue timeouts) are the engine's, tested on it.
import type { GenerateHooks, GenerationRequest, GenerationResult, Generator } from '../../../src/contract/types.ts';
import { IrisError } from '../../../src/contract/types.ts';

export interface FakeGeneratorOptions {
  readonly modelId?: string;
  readonly text?: string;
  readonly stepMs?: number;
  /** Throw this instead of generating (e.g. a plain Error, to test masking). */
  readonly fail?: Error;
}

export interface FakeGenerator extends Generator {
  readonly requests: GenerationRequest[];
  /** Signals of calls that were aborted, in order. */
  readonly aborted: AbortSignal[];
  /** Resolves when the n-th generate call (1-based) has started. */
  started(n: number): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function createFakeGenerator(options: FakeGeneratorOptions = {}): FakeGenerator {
  const words = (options.text ?? 'a large blue square').split(' ');
  const requests: GenerationRequest[] = [];
  const aborted: AbortSignal[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];

  const step = async (hooks: GenerateHooks, i: number): Promise<boolean> => {
    if (options.stepMs) await sleep(options.stepMs);
    if (hooks.signal?.aborted) return false;
    const text = (i === 0 ? '' : ' ') + words[i];
    hooks.onDelta?.({ text, token: { id: i + 10, text } });
    return true;
  };

  const generate = async (request: GenerationRequest, hooks: GenerateHooks = {}): Promise<GenerationResult> => {
    requests.push(request);
    waiters.filter((w) => w.n <= requests.length).forEach((w) => w.resolve());
    if (options.fail) throw options.fail;
    if (hooks.signal?.aborted) throw new IrisError('CANCELLED', 'cancelled before start');
    let produced = 0;
    while (produced < words.length && (await step(hooks, produced))) produced++;
    if (hooks.signal?.aborted) aborted.push(hooks.signal);
    const chosen = words.slice(0, produced);
    return {
      text: chosen.join(' '),
      tokens: chosen.map((w, i) => ({ id: i + 10, text: (i === 0 ? '' : ' ') + w, logprob: -0.5 })),
      finishReason: produced < words.length ? 'cancelled' : 'eos',
      usage: { promptTokens: 1, imageTokens: 64, completionTokens: produced },
      timings: { queueMs: 0, imageEncodeMs: 1, imageCached: false, prefillMs: 1, decodeMs: 1, totalMs: 3 },
      model: options.modelId ?? 'fake',
      warnings: [],
      confidence: produced === 0
        ? { tokens: 0, meanLogprob: null, minLogprob: null, perplexity: null }
        : { tokens: produced, meanLogprob: -0.5, minLogprob: -0.5, perplexity: Math.exp(0.5) },
    };
  };

  return {
    modelId: options.modelId ?? 'fake',
    requests,
    aborted,
    generate,
    started: (n) => (requests.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}
