// npm run bench:prefix [-- --model DIR --images N --rounds N --clients N]
// Image-prefix caching on a joint-embedding (LLaVA-layout) model: per image one caption
// then six questions, the workload the cache is for. The same engine settings with the
// cache off (--prefix-cache-tokens 0) and on, interleaved round by round, fresh images each
// round (so the first request of an image always computes its prefix). Reports the median
// latency of the later questions, the requests/s and the hit counts, side by side.
// Writes bench/results/prefix-<model>-<date>.json.
import { writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { GenerationRequest } from '../src/contract/types.ts';
import { createEngine } from '../src/engine/create-engine.ts';
import type { Engine } from '../src/engine/engine.ts';
import { ROOT } from '../test/helpers.ts';
import { resultsDir, shown } from './results-dir.ts';

const { values } = parseArgs({ options: { model: { type: 'string' }, images: { type: 'string' }, rounds: { type: 'string' }, clients: { type: 'string' } } });
const modelDir = resolve(values.model ?? join(ROOT, 'assets/models/shapes-joint'));
const numImages = Number(values.images ?? 24);
const numRounds = Number(values.rounds ?? 5);
const numClients = Number(values.clients ?? 8);
const QUESTIONS = ['what color is the circle?', 'what shape is the red object?', 'how many shapes are there?', 'how many blue shapes are there?', 'is there a large green square?', 'is the triangle small or large?'];

/** A distinct image per (round, index): solid shapes on gray, different each time. */
async function image(round: number, index: number): Promise<Uint8Array> {
  const hue = (round * 97 + index * 31) % 360;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128"><rect width="128" height="128" fill="#808080"/><circle cx="${30 + (index % 7) * 9}" cy="40" r="12" fill="hsl(${hue},80%,50%)"/><rect x="70" y="${60 + (round % 5) * 6}" width="30" height="30" fill="hsl(${(hue + 120) % 360},80%,50%)"/></svg>`;
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}

interface RoundResult {
  requestsPerSecond: number;
  laterQuestionMs: number[];
  cachedPrefixes: number;
}

/** Clients take images in turn; each sends the caption, then the six questions one after another. */
async function round(engine: Engine, images: readonly Uint8Array[]): Promise<RoundResult> {
  const started = performance.now();
  const laterQuestionMs: number[] = [];
  let cachedPrefixes = 0;
  let next = 0;
  const client = async (): Promise<void> => {
    while (next < images.length) {
      const img = images[next++];
      const requests: GenerationRequest[] = [{ task: 'caption', image: img }, ...QUESTIONS.map((q): GenerationRequest => ({ task: 'answer', image: img, question: q }))];
      for (const [k, request] of requests.entries()) {
        const result = await engine.generate(request);
        if (k > 0) laterQuestionMs.push(result.timings.totalMs);
        if (result.timings.prefixCached) cachedPrefixes++;
      }
    }
  };
  await Promise.all(Array.from({ length: numClients }, client));
  return { requestsPerSecond: (images.length * 7) / ((performance.now() - started) / 1000), laterQuestionMs, cachedPrefixes };
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const off = await createEngine({ modelDir, prefixCacheTokens: 0 });
const on = await createEngine({ modelDir });
const results: { off: RoundResult[]; on: RoundResult[] } = { off: [], on: [] };
try {
  for (let r = 0; r < numRounds; r++) {
    const images = await Promise.all(Array.from({ length: numImages }, (_, i) => image(r, i)));
    const order: ['off' | 'on', Engine][] = r % 2 === 0 ? [['off', off], ['on', on]] : [['on', on], ['off', off]];
    for (const [name, engine] of order) results[name].push(await round(engine, images));
  }
} finally {
  await Promise.all([off.release(), on.release()]);
}
const summary = Object.fromEntries((['off', 'on'] as const).map((k) => [k, {
  requestsPerSecond: median(results[k].map((r) => r.requestsPerSecond)),
  laterQuestionMsP50: median(results[k].flatMap((r) => r.laterQuestionMs)),
  cachedPrefixesPerRound: median(results[k].map((r) => r.cachedPrefixes)),
}]));
const ratio = { requestsPerSecond: summary.on.requestsPerSecond / summary.off.requestsPerSecond, laterQuestionLatency: summary.on.laterQuestionMsP50 / summary.off.laterQuestionMsP50 };
const stem = `prefix-${basename(modelDir)}-${new Date().toISOString().slice(0, 10)}`;
await writeFile(join(resultsDir(), `${stem}.json`), JSON.stringify({ modelDir: basename(modelDir), numImages, numRounds, numClients, summary, ratio, rounds: results }, null, 2) + '\n');
console.log(`cache off: ${summary.off.requestsPerSecond.toFixed(1)} req/s, later questions p50 ${summary.off.laterQuestionMsP50.toFixed(1)} ms`);
console.log(`cache on:  ${summary.on.requestsPerSecond.toFixed(1)} req/s, later questions p50 ${summary.on.laterQuestionMsP50.toFixed(1)} ms, ${summary.on.cachedPrefixesPerRound} of ${numImages * 7} prefills from the cache per round`);
console.log(`on/off: ${ratio.requestsPerSecond.toFixed(2)}× requests/s, ${ratio.laterQuestionLatency.toFixed(2)}× later-question latency; wrote ${shown(join(resultsDir(), stem))}.json`);
