// Speed of fp32 / q8 / fp16 measured side by side in one process, in interleaved rounds:
// the machine is shared (a training job may hold a core), so each round runs every dtype
// once, and the figure kept is each dtype's best round (the least disturbed one), with
// the median of rounds next to it.
import type { Dtype } from '../src/config/config.ts';
import { createEngine } from '../src/engine/create-engine.ts';
import type { Engine } from '../src/engine/engine.ts';
import { onnxFiles } from '../src/model/files.ts';
import { ReferenceDecoder } from '../src/engine/reference-decoder.ts';
import { decodeStep, prefillStep } from '../text/batch-inputs.ts';
import { median } from './measure.ts';

export interface SpeedFigures {
  /** Tokens after the first per second of decode time, one request at a time. */
  singleDecodeTokensPerSecond: { best: number; median: number };
  /** Generated tokens per second of wall time, 32 requests decoded together by the engine. */
  batch32TokensPerSecond: { best: number; median: number };
  /** The decoder alone (no image, no sampling): microseconds per step at a 24-token past, by rows. */
  decoderStepMicros: Record<string, { best: number; median: number }>;
}

const STEP_ROWS = [1, 32] as const;

/** Mean time of 20 decode steps of `rows` rows after a 4-token prompt and 20 warm steps. */
async function decoderStepRound(pipeline: ReferenceDecoder, rows: number): Promise<number> {
  const { runner, encoder } = pipeline.model;
  const [probe] = await encoder.encode([new Float32Array(3 * encoder.height * encoder.width)]);
  const encoderStates = { ...probe, data: new Float32Array(rows * probe.data.length).fill(0.1) }; // [rows, patches, d]
  const prompt = prefillStep(Array.from({ length: rows }, () => Int32Array.from([1, 5, 6, 7])), 0);
  let out = await runner.step({ tokens: prompt.step, encoderStates, cache: runner.emptyCache(rows) });
  let state = prompt.state;
  let started = 0;
  for (let i = 0; i < 40; i++) {
    if (i === 20) started = performance.now();
    const next = decodeStep(state, new Int32Array(rows).fill(8));
    out = await runner.step({ tokens: next.step, encoderStates, cache: out.cache });
    state = next.state;
  }
  return ((performance.now() - started) / 20) * 1000;
}

/** The same bytes plus a tag: a new content hash, so the embedding cache never answers. */
function distinct(image: Uint8Array, tag: number): Uint8Array {
  const out = new Uint8Array(image.length + 4);
  out.set(image);
  new DataView(out.buffer).setUint32(image.length, tag);
  return out;
}

async function singleRound(pipeline: ReferenceDecoder, images: readonly Uint8Array[], newTokens: number, tag: number): Promise<number> {
  const rates: number[] = [];
  for (const [i, image] of images.entries()) {
    const result = await pipeline.generate({ task: 'caption', image: distinct(image, tag * 1000 + i), options: { maxNewTokens: newTokens, minNewTokens: newTokens } });
    rates.push((result.tokens.length - 1) / (result.timings.decodeMs / 1000));
  }
  return median(rates);
}

async function batchRound(engine: Engine, images: readonly Uint8Array[], newTokens: number, tag: number): Promise<number> {
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: 32 }, (_, i) =>
    engine.generate({ task: 'caption', image: distinct(images[i % images.length], tag * 1000 + i), options: { maxNewTokens: newTokens, minNewTokens: newTokens } })));
  return results.reduce((n, r) => n + r.tokens.length, 0) / ((performance.now() - started) / 1000);
}

const summary = (xs: number[], isTime = false) => ({ best: isTime ? Math.min(...xs) : Math.max(...xs), median: median(xs) });

export async function measureSpeeds(modelDir: string, dtypes: readonly Dtype[], images: readonly Uint8Array[], options: { rounds: number; threads: number }): Promise<Record<string, SpeedFigures>> {
  const pipelines = await Promise.all(dtypes.map((d) => ReferenceDecoder.load({ modelDir, threads: options.threads, ...onnxFiles(d) })));
  const engines = await Promise.all(dtypes.map((d) => createEngine({ modelDir, threads: options.threads, maxBatchSize: 32, ...onnxFiles(d) })));
  const newTokens = Math.min(64, (pipelines[0].model.folder.maxPositions ?? 65) - 1);
  const single: number[][] = dtypes.map(() => []);
  const batch: number[][] = dtypes.map(() => []);
  const steps: number[][][] = dtypes.map(() => STEP_ROWS.map(() => []));
  try {
    for (let round = 0; round <= options.rounds; round++) {
      for (const i of dtypes.keys()) {
        const [s, b] = [await singleRound(pipelines[i], images, newTokens, round), await batchRound(engines[i], images, newTokens, round)];
        const micros = [];
        for (const rows of STEP_ROWS) micros.push(await decoderStepRound(pipelines[i], rows));
        if (round > 0) { // round 0 warms up every session
          single[i].push(s);
          batch[i].push(b);
          micros.forEach((m, r) => steps[i][r].push(m));
        }
      }
    }
  } finally {
    await Promise.all([...pipelines, ...engines].map((g) => g.release()));
  }
  return Object.fromEntries(dtypes.map((d, i) => [d, {
    singleDecodeTokensPerSecond: summary(single[i]),
    batch32TokensPerSecond: summary(batch[i]),
    decoderStepMicros: Object.fromEntries(STEP_ROWS.map((rows, r) => [`rows${rows}`, summary(steps[i][r], true)])),
  }]));
}
