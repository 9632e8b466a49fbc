// Records golden outputs by running a real model folder on the shipped samples:
//   npx tsx test/golden/make-goldens.ts [--model assets/models/shapes-base]
// Writes test/golden/goldens.<model>.json, which goldens.test.ts then checks token for
// token. Re-run it (and review the diff) whenever the model is retrained.
import { readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../../src/model/load.ts';
import { createEngine } from '../../src/engine/create-engine.ts';
import type { GenerationRequest } from '../../src/contract/types.ts';
import { ROOT } from '../helpers.ts';

export interface GoldenCase {
  image: string; // relative to assets/samples
  task: GenerationRequest['task'];
  question?: string;
  prompt?: string;
  ids: number[];
  text: string;
}

export interface GoldenFile {
  model: string; // folder, relative to the repo root
  recordedAt: string;
  cases: GoldenCase[];
}

export const SAMPLES = join(ROOT, 'assets/samples');

export interface SampleLabel {
  image: string;
  caption: string;
  questions: { kind: string; question: string; answer: string }[];
  continuation: { prefix: string; caption: string };
}

export async function readSamples(): Promise<SampleLabel[]> {
  const text = await readFile(join(SAMPLES, 'labels.jsonl'), 'utf8');
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as SampleLabel);
}

/** Every request the goldens cover: per sample, its caption, each question, its continuation. */
export function goldenRequests(samples: SampleLabel[]): Omit<GoldenCase, 'ids' | 'text'>[] {
  return samples.flatMap((s) => [
    { image: s.image, task: 'caption' as const },
    ...s.questions.map((q) => ({ image: s.image, task: 'answer' as const, question: q.question })),
    { image: s.image, task: 'generate' as const, prompt: s.continuation.prefix },
  ]);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' } } });
  const modelDir = resolve(values.model ?? DEFAULT_MODEL_DIR);
  const engine = await createEngine({ modelDir });
  const cases: GoldenCase[] = [];
  for (const c of goldenRequests(await readSamples())) {
    const image = new Uint8Array(await readFile(join(SAMPLES, c.image)));
    const result = await engine.generate({ ...c, image });
    cases.push({ ...c, ids: result.tokens.map((t) => t.id), text: result.text });
  }
  await engine.release();
  const file: GoldenFile = { model: relative(ROOT, modelDir), recordedAt: new Date().toISOString(), cases };
  const out = join(ROOT, 'test/golden', `goldens.${engine.modelId}.json`);
  // one case per line: reviewable diffs when a retrained model changes some outputs
  const lines = file.cases.map((c) => `    ${JSON.stringify(c)}`).join(',\n');
  await writeFile(out, `{\n  "model": ${JSON.stringify(file.model)},\n  "recordedAt": "${file.recordedAt}",\n  "cases": [\n${lines}\n  ]\n}\n`);
  console.log(`recorded ${cases.length} golden cases from ${file.model} → ${relative(ROOT, out)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
