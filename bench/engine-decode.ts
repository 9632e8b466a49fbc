// npx tsx bench/engine-decode.ts [--model DIR] [--clients 32] [--tokens 48] [--rounds 5]
// The decode-only graph inside the engine, and the engine's step against a tight loop.
// Two engines on the same weights, interleaved round by round: the folder as it is and a
// copy without onnx/decoder_with_past_model*.onnx (every step on the merged graph, as an
// optimum folder runs). Each round `clients` requests generate `tokens` tokens each
// (min = max) on one image (its embedding cached after the first: the load is decode
// steps). Reported: process CPU per generated token (all threads: onnxruntime, the
// engine's JS, GC), and, for the tight loop, DecoderRunner.step alone at the same rows
// and a mid-generation past (process CPU per row-step); the engine's figure over the
// tight loop's says what the engine adds around the decoder call.
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createEngine } from '../src/engine/create-engine.ts';
import { DEFAULT_MODEL_DIR, loadIrisModel, sessionOptionsOf } from '../src/model/load.ts';
import { decodeStep, prefillStep } from '../text/batch-inputs.ts';
import { DecoderRunner } from '../text/decoder-runner.ts';
import { ROOT } from '../test/helpers.ts';
import { median } from './measure.ts';

const { values } = parseArgs({ options: { model: { type: 'string' }, clients: { type: 'string' }, tokens: { type: 'string' }, rounds: { type: 'string' } } });
const modelDir = resolve(values.model ?? DEFAULT_MODEL_DIR);
const clients = Number(values.clients ?? 32);
const tokens = Number(values.tokens ?? 48);
const rounds = Number(values.rounds ?? 5);
const cpuUs = (): number => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

const mergedOnly = mkdtempSync(join(tmpdir(), 'iris-merged-only-'));
cpSync(modelDir, mergedOnly, { recursive: true, filter: (src) => !/decoder_with_past_model[^/]*\.onnx$/.test(src) });
const image = new Uint8Array(readFileSync(join(ROOT, 'assets/samples/scene-2.png')));
const engines = {
  merged: await createEngine({ modelDir: mergedOnly, threads: 1, maxBatchSize: clients, speculative: 'off' }),
  'decode-only': await createEngine({ modelDir, threads: 1, maxBatchSize: clients, speculative: 'off' }),
};

/** Process CPU µs per generated token for one round of `clients` concurrent generations. */
async function round(engine: (typeof engines)['merged']): Promise<number> {
  const started = cpuUs();
  const results = await Promise.all(Array.from({ length: clients }, () => engine.generate({ task: 'generate', image, prompt: 'a', options: { maxNewTokens: tokens, minNewTokens: tokens } })));
  const generated = results.reduce((n, r) => n + r.tokens.length, 0);
  return (cpuUs() - started) / generated;
}

// The tight loop: one runner per graph, `clients` rows, a past of about half a generation.
const model = await loadIrisModel(modelDir, { threads: 1 });
const merged = await DecoderRunner.load(join(modelDir, 'onnx', 'decoder_model_merged.onnx'), sessionOptionsOf({ threads: 1 }));
const past = Math.round(tokens / 2) + 2;
const { hiddenSize, numPatches } = { hiddenSize: model.runner.layout.numHeads * model.runner.layout.headDim, numPatches: 64 };
const first = prefillStep(Array.from({ length: clients }, () => Int32Array.from({ length: past }, (_, j) => (j === 0 ? 1 : 5 + (j % 20)))), 0);
const out = await model.runner.step({ tokens: first.step, encoderStates: { data: new Float32Array(clients * numPatches * hiddenSize).fill(0.01), numPatches, hiddenSize }, cache: model.runner.emptyCache(clients) });
const input = { tokens: decodeStep(first.state, new Int32Array(clients).fill(5)).step, encoderStates: { data: new Float32Array(clients * hiddenSize), numPatches: 1, hiddenSize }, cache: out.cache };
const runners = { merged, 'decode-only': model.runner };
/** Process CPU µs per row-step of 60 steps. */
async function tight(runner: DecoderRunner): Promise<number> {
  // Each step's cache is dropped at once (released: a runner fetching new columns reuses its arrays, as the engine does).
  for (let i = 0; i < 5; i++) (await runner.step(input)).cache.release();
  const started = cpuUs();
  for (let i = 0; i < 60; i++) (await runner.step(input)).cache.release();
  return (cpuUs() - started) / 60 / clients;
}

// Engine rounds and tight-loop rounds interleaved (the machine's load moves CPU time too), the order alternating.
const names = Object.keys(engines) as (keyof typeof engines)[];
const perToken: Record<string, number[]> = { merged: [], 'decode-only': [] };
const loop: Record<string, number[]> = { merged: [], 'decode-only': [] };
for (const name of names) await round(engines[name]); // warm-up
for (let r = 0; r < rounds; r++) {
  for (const name of r % 2 === 0 ? names : [...names].reverse()) {
    perToken[name].push(await round(engines[name]));
    loop[name].push(await tight(runners[name]));
  }
}
await Promise.all([...names.map((n) => engines[n].release()), merged.release(), model.release()]);
rmSync(mergedOnly, { recursive: true, force: true });

console.log(`${clients} clients × ${tokens} tokens, process CPU µs per generated token (engine) and per row-step (tight loop, past ${past}), medians of ${rounds} interleaved rounds`);
for (const name of names) {
  const [e, t] = [median(perToken[name]), median(loop[name])];
  console.log(`${name.padEnd(11)}: engine ${e.toFixed(1)} µs/token, tight loop ${t.toFixed(1)} µs/row-step, engine/tight ${median(perToken[name].map((x, i) => x / loop[name][i])).toFixed(2)}`);
}
console.log(`merged/decode-only: engine ${median(perToken.merged.map((x, i) => x / perToken['decode-only'][i])).toFixed(2)}×, tight loop ${median(loop.merged.map((x, i) => x / loop['decode-only'][i])).toFixed(2)}×`);
