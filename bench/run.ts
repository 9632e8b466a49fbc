// npm run bench [-- --model DIR --repeats N --threads N]
// Single-request latency, decode tokens/s, KV cache on vs off at 64 new tokens, and Iris
// vs transformers.js on the same folder and images. Writes bench/results/*.json and *.png.
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../src/model/load.ts';
import { ReferenceDecoder } from '../src/engine/reference-decoder.ts';
import { ROOT } from '../test/helpers.ts';
import { renderChart } from './chart.ts';
import { loadImages, loadTransformersJs, measureIris, measureTransformersJs } from './measure.ts';
import { resultsDir, shown } from './results-dir.ts';

const { values } = parseArgs({ options: { model: { type: 'string' }, repeats: { type: 'string' }, threads: { type: 'string' } } });
const fallback = join(ROOT, 'assets/models/tiny-random');
const modelDir = resolve(values.model ?? (existsSync(join(DEFAULT_MODEL_DIR, 'onnx')) ? DEFAULT_MODEL_DIR : fallback));
const repeats = Number(values.repeats ?? 20);
const threads = Number(values.threads ?? 1);
const samplesDir = join(ROOT, 'assets/samples');
const images = await loadImages(samplesDir, (await readdir(samplesDir)).filter((f) => f.endsWith('.png')).sort());

const cached = await ReferenceDecoder.load({ modelDir, threads });
const uncached = await ReferenceDecoder.load({ modelDir, threads, useKvCache: false });
const positions = cached.model.folder.maxPositions ?? 65;
const longTokens = Math.min(64, positions - 1); // caption prompt is 1 token
const tjs = await loadTransformersJs(modelDir, threads);

console.log(`model ${basename(modelDir)}, ${repeats} runs each, ${threads} thread(s)`);
const result = {
  model: basename(modelDir),
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
  threads,
  repeats,
  caption: {
    iris: await measureIris(cached, images, undefined, repeats),
    transformersJs: await measureTransformersJs(tjs, images, undefined, 32, repeats),
  },
  long: {
    newTokens: longTokens,
    irisKvCache: await measureIris(cached, images, longTokens, repeats),
    irisNoKvCache: await measureIris(uncached, images, longTokens, Math.max(3, Math.round(repeats / 4))),
    transformersJs: await measureTransformersJs(tjs, images, longTokens, longTokens, repeats),
  },
};
const speedup = result.long.irisKvCache.decodeTokensPerSecond! / result.long.irisNoKvCache.decodeTokensPerSecond!;
const summary = { ...result, kvCacheDecodeSpeedup: speedup };
console.log(JSON.stringify(summary, null, 2));

const out = resultsDir();
await mkdir(out, { recursive: true });
const stem = `${result.model}-${result.date.slice(0, 10)}`;
await writeFile(join(out, `${stem}.json`), JSON.stringify(summary, null, 2) + '\n');
const png = await renderChart(`${result.model}: ${repeats} runs, ${threads} thread(s), medians`, [
  { title: 'caption latency', unit: 'ms per request (lower is better)', bars: [
    { label: 'Iris', value: result.caption.iris.latencyMs, color: '#3b6fd8' },
    { label: 'transformers.js', value: result.caption.transformersJs.latencyMs, color: '#e08a1e' },
  ] },
  { title: `${longTokens} new tokens`, unit: 'tokens/s end to end (higher is better)', bars: [
    { label: 'Iris KV', value: result.long.irisKvCache.tokensPerSecond, color: '#3b6fd8' },
    { label: 'Iris no KV', value: result.long.irisNoKvCache.tokensPerSecond, color: '#9db5e8' },
    { label: 'transformers.js', value: result.long.transformersJs.tokensPerSecond, color: '#e08a1e' },
  ] },
]);
await writeFile(join(out, `${stem}.png`), png);
console.log(`wrote ${shown(join(resultsDir(), stem))}.json and .png; KV cache decode speedup ${speedup.toFixed(2)}x`);
await Promise.all([cached.release(), uncached.release(), tjs.model.dispose()]);
