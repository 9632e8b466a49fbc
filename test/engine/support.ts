// Shared pieces of the engine tests: a mixed workload on synthetic images, a seeded
// shuffle, an engine whose step hook lets a test submit requests at chosen steps, and
// the single-request pipeline's captions that the servers' answers are checked against.
import { createEngine, type EngineOptions } from '../../src/engine/create-engine.ts';
import type { Engine, StepInfo } from '../../src/engine/engine.ts';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import type { GenerateHooks, GenerationOptions, GenerationRequest, GenerationResult } from '../../src/contract/types.ts';
import { createRng } from '../../text/sampling/rng.ts';
import { FIXTURES, syntheticImage } from '../helpers.ts';

const QUESTIONS = ['what color is the circle?', 'how many shapes are there?', 'is there a large red square?', 'what shape is the blue object?'];
const PROMPTS = ['a large red', '', 'a small blue circle above', 'two'];

/** Different tasks, images, prompt lengths and lengths to generate. */
export async function workload(count: number): Promise<GenerationRequest[]> {
  const images = await Promise.all([0, 1, 2, 3, 4].map((s) => syntheticImage(72 + 8 * s, 72 + 8 * s, s + 1)));
  return Array.from({ length: count }, (_, i): GenerationRequest => {
    const image = images[i % images.length];
    const options = { maxNewTokens: 3 + ((i * 7) % 22), logprobs: true };
    if (i % 3 === 0) return { task: 'caption', image, options };
    if (i % 3 === 1) return { task: 'answer', image, question: QUESTIONS[i % QUESTIONS.length], options };
    return { task: 'generate', image, prompt: PROMPTS[i % PROMPTS.length], options };
  });
}

/** `count` synthetic images and the text the single-request pipeline captions each with on the tiny fixture. */
export async function plainCaptions(count: number, options: GenerationOptions): Promise<{ images: Uint8Array[]; expected: string[] }> {
  const images = await Promise.all(Array.from({ length: count }, (_, i) => syntheticImage(64 + 4 * i, 64, i + 1)));
  const pipeline = await ReferenceDecoder.load({ modelDir: FIXTURES.encoderDecoder, threads: 1 });
  try {
    const expected: string[] = [];
    for (const image of images) expected.push((await pipeline.generate({ task: 'caption', image, options })).text);
    return { images, expected };
  } finally {
    await pipeline.release();
  }
}

export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const rng = createRng(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export interface Harness {
  engine: Engine;
  steps: StepInfo[];
  /** Submit each request at the step its offset names (0: now), in the given order. */
  arrive(requests: readonly GenerationRequest[], offsets: readonly number[], hooks?: (i: number) => GenerateHooks): Promise<(GenerationResult | Error)[]>;
}

export async function harness(options: EngineOptions): Promise<Harness> {
  const steps: StepInfo[] = [];
  let onStep: ((info: StepInfo) => void) | undefined;
  const engine = await createEngine({ threads: 1, ...options, onStep: (info) => {
    steps.push(info);
    onStep?.(info);
  } });
  const arrive: Harness['arrive'] = (requests, offsets, hooks) => {
    const start = steps.length;
    const outcomes: Promise<GenerationResult | Error>[] = new Array(requests.length);
    const submit = (i: number): void => {
      outcomes[i] = engine.generate(requests[i], hooks?.(i)).catch((e: Error) => e);
    };
    const pending = new Set(requests.map((_, i) => i));
    const submitDue = (): void => {
      for (const i of pending) {
        if (offsets[i] <= steps.length - start) {
          pending.delete(i);
          submit(i);
        }
      }
    };
    onStep = submitDue;
    submitDue();
    return new Promise((resolve, reject) => {
      // Steps stop when the engine is idle: submit any still pending (their offsets were past the end).
      const drain = async (): Promise<void> => {
        while (pending.size > 0) {
          await new Promise((r) => setTimeout(r, 1));
          if (pending.size > 0 && engine.stats().batchSize === 0 && engine.stats().queueDepth === 0) {
            const [next] = pending;
            pending.delete(next);
            submit(next);
          }
        }
        resolve(Promise.all(outcomes));
      };
      drain().catch(reject);
    });
  };
  return { engine, steps, arrive };
}
