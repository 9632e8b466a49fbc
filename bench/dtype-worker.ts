// Peak RSS of one dtype, in a process of its own: load the model and caption a few
// images one at a time and 32 together, then print {"dtype", "peakRssMB"}.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Dtype } from '../src/config/config.ts';
import { createEngine } from '../src/engine/create-engine.ts';
import { onnxFiles } from '../src/model/files.ts';
import { ROOT } from '../test/helpers.ts';
import { loadImages } from './measure.ts';

const { values } = parseArgs({ options: { model: { type: 'string' }, dtype: { type: 'string' }, threads: { type: 'string' } } });
const dtype = values.dtype as Dtype;
const samples = join(ROOT, 'assets/samples');
const images = await loadImages(samples, (await readdir(samples)).filter((f) => f.endsWith('.png')).sort());
const engine = await createEngine({ modelDir: values.model!, threads: Number(values.threads ?? 1), maxBatchSize: 32, ...onnxFiles(dtype) });
for (const image of images) await engine.generate({ task: 'caption', image });
await Promise.all(Array.from({ length: 32 }, (_, i) => {
  const image = new Uint8Array(images[i % images.length].length + 1 + i); // distinct bytes: 32 image encodes and 32 KV rows
  image.set(images[i % images.length]);
  return engine.generate({ task: 'caption', image, options: { maxNewTokens: 64 } });
}));
await engine.release();
console.log(JSON.stringify({ dtype, peakRssMB: process.resourceUsage().maxRSS / 1024 }));
