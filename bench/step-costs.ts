// npm run bench:steps [-- --model DIR --threads 1 --repeats 50 --ab-rows 1,8,24,32 --rounds 7 --calls 60]
// What one onnxruntime call costs at each batch size, without the engine around it: the
// vision encoder (1 and 16 images), the decoder's prefill (rows of a 7-token prompt,
// computing the cross-attention K/V) and a decode step (one token per row, 16 past
// positions). These bound what batching can buy: a workload whose per-request cost is
// mostly encoder and prefill gains little from batched decode steps.
// Then, when the folder has a decode-only graph (onnx/decoder_with_past_model.onnx), the
// decode step on the merged graph vs on it, interleaved in rounds (the order alternates),
// in process CPU time (getrusage: onnxruntime's thread and V8's GC threads alike; wall
// time would measure the machine's other load), plus the largest logit difference.
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR, loadIrisModel, sessionOptionsOf } from '../src/model/load.ts';
import { decodeStep, prefillStep } from '../text/batch-inputs.ts';
import { DecoderRunner, type EncoderStates } from '../text/decoder-runner.ts';
import type { KvCache } from '../text/kv-cache.ts';
import { median } from './measure.ts';

const { values } = parseArgs({ options: {
  model: { type: 'string' }, threads: { type: 'string' }, repeats: { type: 'string' },
  'ab-rows': { type: 'string' }, rounds: { type: 'string' }, calls: { type: 'string' },
} });
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

interface StepCost {
  medianUs: number; // median process CPU µs of one step
  meanUs: number; // process CPU µs per step over the round (GC included wherever it fell)
}

function cpuUs(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

async function stepCost(runner: DecoderRunner, input: Parameters<DecoderRunner['step']>[0], calls: number): Promise<StepCost> {
  for (let i = 0; i < 5; i++) await runner.step(input);
  const us: number[] = [];
  const before = cpuUs();
  for (let i = 0; i < calls; i++) {
    const started = cpuUs();
    await runner.step(input);
    us.push(cpuUs() - started);
  }
  return { medianUs: median(us), meanUs: (cpuUs() - before) / calls };
}

if (runner.hasDecodeGraph) {
  const abRows = (values['ab-rows'] ?? '1,8,24,32').split(',').map(Number);
  const rounds = Number(values.rounds ?? 7);
  const calls = Number(values.calls ?? 60);
  const merged = await DecoderRunner.load(join(model.folder.dir, 'onnx', 'decoder_model_merged.onnx'), sessionOptionsOf({ threads }));
  console.log(`\ndecode step (16 past positions), merged vs decode-only graph: process CPU µs per step (median step; mean over the round), medians of ${rounds} interleaved rounds of ${calls} steps`);
  for (const rows of abRows) {
    const live = await cacheOf(rows, 16);
    const input = { tokens: live.next.step, encoderStates: { data: new Float32Array(rows * embedding.hiddenSize), numPatches: 1, hiddenSize: embedding.hiddenSize }, cache: live.cache };
    const [a, b] = [await merged.step(input), await runner.step(input)];
    const maxDiff = a.logits.reduce((m, v, i) => Math.max(m, Math.abs(v - b.logits[i])), 0);
    const costs: { merged: StepCost; decode: StepCost }[] = [];
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) costs.push({ merged: await stepCost(merged, input, calls), decode: await stepCost(runner, input, calls) });
      else {
        const decode = await stepCost(runner, input, calls);
        costs.push({ merged: await stepCost(merged, input, calls), decode });
      }
    }
    const med = (pick: (c: { merged: StepCost; decode: StepCost }) => number): number => median(costs.map(pick));
    const fmt = (x: number): string => x.toFixed(0).padStart(5);
    console.log(`${String(rows).padStart(2)} rows: median step merged ${fmt(med((c) => c.merged.medianUs))} decode-only ${fmt(med((c) => c.decode.medianUs))} ` +
      `(${med((c) => c.merged.medianUs / c.decode.medianUs).toFixed(2)}×); mean merged ${fmt(med((c) => c.merged.meanUs))} decode-only ${fmt(med((c) => c.decode.meanUs))} ` +
      `(${med((c) => c.merged.meanUs / c.decode.meanUs).toFixed(2)}×); max |Δlogit| ${maxDiff.toExponential(1)}`);
  }
  await merged.release();
}
await model.release();
