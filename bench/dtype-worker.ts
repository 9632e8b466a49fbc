// One dtype of `npm run bench:dtypes`, in its own process so its peak RSS is its own:
// single-stream decode (one request at a time, the pipeline) and a full engine batch.
// Prints one JSON line.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Dtype } from '../src/config.ts';
import { createEngine } from '../src/engine/create-engine.ts';
import { onnxFiles } from '../src/models/load-pipeline.ts';
import { Pipeline } from '../src/pipeline.ts';
import { ROOT } from '../test/helpers.ts';
import { loadImages, measureIris, median } from './measure.ts';

const { values } = parseArgs({ options: { model: { type: 'string' }, dtype: { type: 'string' }, repeats: { type: 'string' }, threads: { type: 'string' } } });
const modelDir = values.model!;
const dtype = values.dtype as Dtype;
const repeats = Number(values.repeats ?? 12);
const threads = Number(values.threads ?? 1);
const samples = join(ROOT, 'assets/samples');
const images = await loadImages(samples, (await readdir(samples)).filter((f) => f.endsWith('.png')).sort());

const pipeline = await Pipeline.load({ modelDir, threads, ...onnxFiles(dtype) });
const newTokens = Math.min(64, (pipeline.model.folder.maxPositions ?? 65) - 1);
const single = await measureIris(pipeline, images, newTokens, repeats);
await pipeline.release();

/** Rows decoded together: aggregate generated tokens per second of a full batch of distinct images. */
async function batchThroughput(rows: number): Promise<number> {
  const engine = await createEngine({ modelDir, threads, maxBatchSize: rows, ...onnxFiles(dtype) });
  const run = async (round: number): Promise<number> => {
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: rows }, (_, i) => {
      const image = new Uint8Array(images[i % images.length].length + 1 + round * rows + i); // distinct bytes: no embedding-cache hits
      image.set(images[i % images.length]);
      return engine.generate({ task: 'caption', image, options: { maxNewTokens: newTokens, minNewTokens: newTokens } });
    }));
    return results.reduce((n, r) => n + r.tokens.length, 0) / ((performance.now() - started) / 1000);
  };
  await run(0);
  const runs = [];
  for (let r = 1; r <= 3; r++) runs.push(await run(r));
  await engine.release();
  return median(runs);
}

const batched = await batchThroughput(32);
console.log(JSON.stringify({ dtype, newTokens, single, batch32TokensPerSecond: batched, peakRssMB: process.resourceUsage().maxRSS / 1024 }));
