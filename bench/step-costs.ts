// npm run bench:steps [-- --model DIR --threads 1 --repeats 50]
// What one onnxruntime call costs at each batch size, without the engine around it: the
// vision encoder (1 and 16 images), the decoder's prefill (rows of a 7-token prompt,
// computing the cross-attention K/V) and a decode step (one token per row, 16 past
// positions). These bound what batching can buy: a workload whose per-request cost is
// mostly encoder and prefill gains little from batched decode steps.
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR, loadIrisModel } from '../src/model/load.ts';
import { decodeStep, prefillStep } from '../text/batch-inputs.ts';
import type { EncoderStates } from '../text/decoder-runner.ts';
import type { KvCache } from '../text/kv-cache.ts';
import { median } from './measure.ts';

const { values } = parseArgs({ options: { model: { type: 'string' }, threads: { type: 'string' }, repeats: { type: 'string' } } });
const threads = Number(values.threads ?? 1);
const repeats = Number(values.repeats ?? 50);
const model = await loadIrisModel(resolve(values.model ?? DEFAULT_MODEL_DIR), { threads });
const { encoder, runner } = model;

/** Median ms of `run` over `repeats` calls, after three warm-up calls. */
async function timeIt(run: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 3; i++) await run();
  const ms: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    await run();
    ms.push(performance.now() - started);
  }
  return median(ms);
}

const pixels = (n: number): Float32Array[] => Array.from({ length: n }, (_, i) => new Float32Array(3 * encoder.height * encoder.width).fill(0.1 * i));
const [embedding] = await encoder.encode(pixels(1));
const statesFor = (rows: number): EncoderStates => ({ data: new Float32Array(rows * embedding.data.length).fill(0.01), numPatches: embedding.numPatches, hiddenSize: embedding.hiddenSize });

/** A cache of `rows` rows holding `past` positions, built by a prefill of that length. */
async function cacheOf(rows: number, past: number): Promise<{ cache: KvCache; states: EncoderStates; next: ReturnType<typeof decodeStep> }> {
  const states = statesFor(rows);
  const first = prefillStep(Array.from({ length: rows }, () => Int32Array.from({ length: past }, (_, j) => (j === 0 ? 1 : 5 + (j % 20)))), 0);
  const out = await runner.step({ tokens: first.step, encoderStates: states, cache: runner.emptyCache(rows) });
  return { cache: out.cache, states, next: decodeStep(first.state, new Int32Array(rows).fill(5)) };
}

console.log(`${basename(model.folder.dir)}: ${threads} intra-op thread(s), median of ${repeats}`);
for (const n of [1, 16]) {
  const images = pixels(n);
  const ms = await timeIt(() => encoder.encode(images));
  console.log(`encoder  ${String(n).padStart(2)} images: ${ms.toFixed(2)} ms (${(ms / n).toFixed(2)} ms per image)`);
}
for (const rows of [1, 8, 32]) {
  const states = statesFor(rows);
  const first = prefillStep(Array.from({ length: rows }, () => Int32Array.from([1, 5, 6, 7, 8, 9, 10])), 0);
  const prefillMs = await timeIt(() => runner.step({ tokens: first.step, encoderStates: states, cache: runner.emptyCache(rows) }));
  const live = await cacheOf(rows, 16);
  const decodeMs = await timeIt(() => runner.step({ tokens: live.next.step, encoderStates: live.states, cache: live.cache }));
  console.log(`decoder ${String(rows).padStart(2)} rows: prefill (7 tokens) ${prefillMs.toFixed(2)} ms (${(prefillMs / rows).toFixed(3)} per row), ` +
    `decode step ${decodeMs.toFixed(2)} ms (${(decodeMs / rows).toFixed(3)} per row)`);
}
await model.release();
