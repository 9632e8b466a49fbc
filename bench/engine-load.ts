// npm run bench:engine [-- --model DIR --levels 1,32 --batch 32 --requests 128 --threads N --max-new-tokens 24 --min-new-tokens 0 --image-workers N --image-window-ms N --suffix NAME]
// The engine in-process (no HTTP, no GraphQL): `levels` concurrent clients send caption
// and question requests on distinct images. Reports requests/s, generated tokens/s and
// where the wall time went: inside onnxruntime's session.run (encoder and decoder) versus
// everything else (image decode, preprocessing, tensor building, scheduling, sampling).
// The "non-ORT share" at one client is issue 5's "time outside session calls" target.
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createEngine } from '../src/engine/create-engine.ts';
import type { StepInfo } from '../src/engine/engine.ts';
import { DEFAULT_MODEL_DIR } from '../src/model/load.ts';
import type { GenerationRequest } from '../src/contract/types.ts';
import { ROOT } from '../test/helpers.ts';
import { installOrtTimer, ortTimes } from './ort-timer.ts';
import { resultsDir, shown } from './results-dir.ts';

const { values } = parseArgs({ options: {
  model: { type: 'string' }, levels: { type: 'string' }, batch: { type: 'string' }, requests: { type: 'string' },
  threads: { type: 'string' }, 'max-new-tokens': { type: 'string' }, 'image-workers': { type: 'string' }, 'image-window-ms': { type: 'string' },
  'min-new-tokens': { type: 'string' }, suffix: { type: 'string' },
} });
const modelDir = resolve(values.model ?? DEFAULT_MODEL_DIR);
const levels = (values.levels ?? '1,4,16,32,64').split(',').map(Number);
const maxBatchSize = Number(values.batch ?? 32);
const numRequests = Number(values.requests ?? 128);
const threads = values.threads ? Number(values.threads) : undefined;
const maxNewTokens = Number(values['max-new-tokens'] ?? 24);
/** Image worker threads (0: in the decoder's thread); absent: the engine config's default. */
const imageWorkers = values['image-workers'] === undefined ? undefined : Number(values['image-workers']);
const imageWindowMs = values['image-window-ms'] === undefined ? undefined : Number(values['image-window-ms']);
/** Forcing every request to its full length makes the batch-1 share about decode steps, not per-request setup. */
const minNewTokens = Number(values['min-new-tokens'] ?? 0);

export interface EngineLevel {
  concurrency: number;
  requestsPerSecond: number;
  tokensPerSecond: number;
  /** Share of wall time inside session.run (encoder + decoder). */
  ortShare: number;
  /** Encoder and decoder shares of wall time inside session.run. */
  encoderShare: number;
  decoderShare: number;
  /**
   * Of the time requests spent decoding (from their first step to their result: prefill,
   * decode steps, sampling, detokenizing, the loop between steps), the part outside the
   * decoder's session.run. Meaningful at one client, where nothing else runs meanwhile.
   */
  nonOrtDecodeShare: number;
  /** runner.execute wall time summed over steps. */
  stepMs: number;
  numSteps: number;
  meanRows: number;
}

/** Scenes from assets/samples, each copy made distinct by a trailing byte (new content hash, same pixels). */
function requests(count: number): GenerationRequest[] {
  const dir = join(ROOT, 'assets/samples');
  const scenes = readdirSync(dir).filter((f) => f.endsWith('.png')).sort().map((f) => readFileSync(join(dir, f)));
  return Array.from({ length: count }, (_, i) => {
    const scene = scenes[i % scenes.length];
    const image = new Uint8Array(scene.length + 1 + Math.floor(i / scenes.length));
    image.set(scene);
    const options = { maxNewTokens, minNewTokens };
    return i % 2 === 0 ? { task: 'caption', image, options } : { task: 'answer', image, question: 'how many shapes are there?', options };
  });
}

const pct = (share: number): string => `${(100 * share).toFixed(0)} %`;

installOrtTimer();
const steps: StepInfo[] = [];
const engine = await createEngine({ modelDir, maxBatchSize, threads, maxQueued: 4096, imageWorkers, imageWindowMs, onStep: (s) => steps.push(s) });

async function runLevel(concurrency: number, batch: readonly GenerationRequest[]): Promise<EngineLevel> {
  let next = 0;
  let tokens = 0;
  let decodeSpanMs = 0;
  const [ortBefore, stepsBefore] = [ortTimes(), steps.length];
  const started = performance.now();
  const client = async (): Promise<void> => {
    while (next < batch.length) {
      const result = await engine.generate(batch[next++]);
      tokens += result.usage.completionTokens;
      decodeSpanMs += result.timings.totalMs - result.timings.imageEncodeMs - result.timings.queueMs;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const ms = performance.now() - started;
  const levelSteps = steps.slice(stepsBefore);
  return {
    concurrency,
    requestsPerSecond: batch.length / (ms / 1000),
    tokensPerSecond: tokens / (ms / 1000),
    ortShare: (ortTimes().runMs - ortBefore.runMs) / ms,
    encoderShare: (ortTimes().encoderMs - ortBefore.encoderMs) / ms,
    decoderShare: (ortTimes().decoderMs - ortBefore.decoderMs) / ms,
    nonOrtDecodeShare: 1 - (ortTimes().decoderMs - ortBefore.decoderMs) / decodeSpanMs,
    stepMs: levelSteps.reduce((n, s) => n + s.runMs, 0),
    numSteps: levelSteps.length,
    meanRows: levelSteps.reduce((n, s) => n + s.numDecode + s.numPrefill, 0) / Math.max(1, levelSteps.length),
  };
}

const all = requests(numRequests * (levels.length + 1));
await runLevel(4, all.slice(0, 16)); // warm-up
console.log(`${basename(modelDir)}: batch ${maxBatchSize}, threads ${threads ?? 'engine default (1)'}, images ${imageWorkers === undefined ? 'in the default worker(s)' : imageWorkers === 0 ? 'in this thread' : `in ${imageWorkers} worker(s)`}, ${numRequests} requests per level`);
const out: EngineLevel[] = [];
for (const [i, concurrency] of levels.entries()) {
  const r = await runLevel(concurrency, all.slice((i + 1) * numRequests, (i + 2) * numRequests));
  out.push(r);
  console.log(`c=${String(concurrency).padStart(2)}: ${r.requestsPerSecond.toFixed(1)} req/s, ${r.tokensPerSecond.toFixed(0)} tok/s, ` +
    `in session.run ${pct(r.ortShare)} of wall (encoder ${pct(r.encoderShare)}, decoder ${pct(r.decoderShare)}), ` +
    `outside session.run while decoding ${pct(r.nonOrtDecodeShare)}, ${r.numSteps} steps of ${r.meanRows.toFixed(1)} rows, ${(r.stepMs / r.numSteps).toFixed(2)} ms/step`);
}
await engine.release();

const date = new Date().toISOString();
const summary = {
  model: basename(modelDir), date, maxBatchSize, threads: threads ?? 'engine default', imageWorkers: imageWorkers ?? 'engine default', imageWindowMs: imageWindowMs ?? 'engine default', maxNewTokens, minNewTokens, numRequests,
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
  levels: out,
};
const dir = resultsDir();
await mkdir(dir, { recursive: true });
const stem = `engine-${summary.model}-${date.slice(0, 10)}${values.suffix ? `-${values.suffix}` : ''}`;
await writeFile(join(dir, `${stem}.json`), JSON.stringify(summary, null, 2) + '\n');
console.log(`wrote ${shown(join(resultsDir(), stem))}.json`);
