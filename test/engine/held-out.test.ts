// Invariance over real scenes: the held-out set made by `npm run train` (a seeded sample of
// it, when present; otherwise the committed assets/samples), on the tiny fixtures and on
// the shipped model once it has landed. Every request's greedy tokens must be the same
// alone and continuously batched, whatever the arrival order.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import type { GenerationRequest, GenerationResult } from '../../src/contract/types.ts';
import { createRng } from '../../text/sampling/rng.ts';
import { FIXTURES, ROOT } from '../helpers.ts';
import { harness, shuffled } from './support.ts';

const HELD_OUT = join(ROOT, 'training/data/test');
const SAMPLES = join(ROOT, 'assets/samples');
const SHIPPED = join(ROOT, 'assets/models/shapes-base');
const SCENES = 16;

interface Scene {
  image: string;
  question: string;
  prefix: string;
}

function readScenes(): Scene[] {
  const isHeldOut = existsSync(join(HELD_OUT, 'labels.jsonl'));
  const dir = isHeldOut ? HELD_OUT : SAMPLES;
  const lines = readFileSync(join(dir, 'labels.jsonl'), 'utf8').split('\n').filter((l) => l.trim());
  const rows = lines.map((l) => JSON.parse(l) as { image?: string; images?: Record<string, string>; questions: { question: string }[]; continuation: { prefix: string } });
  const variants = ['png128', 'jpeg64', 'jpeg256'];
  return shuffled(rows, 2024).slice(0, SCENES).map((r, i) => ({
    image: join(dir, r.image ?? r.images![variants[i % variants.length]] ?? Object.values(r.images!)[0]),
    question: r.questions[i % r.questions.length].question,
    prefix: r.continuation.prefix,
  }));
}

function requestsFor(scenes: Scene[]): GenerationRequest[] {
  return scenes.flatMap((s): GenerationRequest[] => {
    const image = new Uint8Array(readFileSync(s.image));
    return [
      { task: 'caption', image },
      { task: 'answer', image, question: s.question },
      { task: 'generate', image, prompt: s.prefix },
    ];
  });
}

const MODELS: [string, string][] = [
  ['tiny-random', FIXTURES.encoderDecoder],
  ['tiny-random-gpt2', FIXTURES.gpt2],
  ['shapes-base', SHIPPED],
];

for (const [name, dir] of MODELS) {
  describe.skipIf(!existsSync(join(dir, 'onnx/decoder_model_merged.onnx')))(`held-out invariance: ${name}`, () => {
    let requests: GenerationRequest[];
    let alone: GenerationResult[];
    beforeAll(async () => {
      requests = requestsFor(readScenes());
      const pipeline = await ReferenceDecoder.load({ modelDir: dir, threads: 1 });
      alone = [];
      for (const r of requests) alone.push(await pipeline.generate(r));
      await pipeline.release();
    });

    it('greedy tokens alone equal tokens in continuously batched steps, over two random arrival orders', async () => {
      const h = await harness({ modelDir: dir, maxBatchSize: 16, maxQueued: requests.length });
      try {
        for (const seed of [11, 12]) {
          const order = shuffled(requests.map((_, i) => i), seed);
          const rng = createRng(seed);
          const outcomes = await h.arrive(order.map((i) => requests[i]), order.map(() => Math.floor(rng() * 40)));
          order.forEach((i, k) => {
            const o = outcomes[k];
            if (o instanceof Error) throw o;
            expect({ i, ids: o.tokens.map((t) => t.id) }).toEqual({ i, ids: alone[i].tokens.map((t) => t.id) });
          });
        }
        expect(Math.max(...h.steps.map((s) => s.numDecode + s.numPrefill))).toBeGreaterThan(4);
      } finally {
        await h.engine.release();
      }
    });
  });
}
