// The onnxruntime-only bound: what the model's calls alone cost, in thread CPU time (robust
// on a shared machine), at the batch sizes that make them cheapest. Raw sessions with
// Iris's session options and feeds built once, so nothing but session.run is timed:
//   encoder  one call on N preprocessed images          → min over N of CPU per image
//   prefill  N rows of a 1-token (caption) prompt       → min over N of CPU per row
//   decode   one token on 32 rows at a fixed past length → CPU per row-step
// A request's unavoidable cost is encoder + prefill + (its decode row-steps × the 32-row
// cost), so the caption bound is cores / that; the decode bound is one thread's 32-row
// steps: 32 tokens per step cost. Adopted from ../shared/perf/ort-micro.ts.
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { encoderPathOf, sessionOptionsOf } from '../../src/model/load.ts';
import { readModelFolder } from '../../src/model/folder.ts';
import { threadCpuNs } from './threadcpu.mjs';

export interface OrtCosts {
  /** CPU ms per call by batch size. */
  encoderMsByBatch: Record<number, number>;
  prefillMsByRows: Record<number, number>;
  /** Decode step CPU ms at `decodeRows` rows, by past length. */
  decodeMsByPast: Record<number, number>;
  decodeRows: number;
  /** The cheapest per image / per row. */
  encoderMsPerImage: number;
  prefillMsPerRow: number;
}

export interface OrtBoundOptions {
  rounds: number;
  calls: number;
  encoderBatches: readonly number[];
  prefillRows: readonly number[];
  decodeRows: number;
  pasts: readonly number[];
  decoderFile?: string;
}

/**
 * Mean CPU ms of one call over at least `n` calls in a row (after 2 warm-up calls): one reading
 * around the loop, so the /proc fallback's clock (updated at scheduler ticks) is exact
 * enough too. The cheapest round counts (see measureOrtCosts).
 */
async function cpuMsPerCall(fn: () => Promise<unknown>, n: number): Promise<number> {
  for (let i = 0; i < 2; i++) await fn();
  const c0 = threadCpuNs();
  let calls = 0;
  // At least n calls, and on until the reading spans MIN_CPU_MS: the /proc fallback's
  // clock only moves at scheduler ticks (4 ms), so a few calls of a tiny model read 0.
  while (calls < n || (threadCpuNs() - c0 < MIN_CPU_MS * 1e6 && calls < 100 * n)) {
    await fn();
    calls++;
  }
  return (threadCpuNs() - c0) / 1e6 / calls;
}

const MIN_CPU_MS = 40;

const int64 = (n: number, dims: number[], value: (i: number) => number): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(value(i))), dims);

export async function measureOrtCosts(modelDir: string, options: OrtBoundOptions): Promise<OrtCosts> {
  const folder = await readModelFolder(modelDir);
  const sessionOptions = sessionOptionsOf({ threads: 1 });
  const encoder = await ort.InferenceSession.create(encoderPathOf(folder, {}), sessionOptions);
  const decoder = await ort.InferenceSession.create(join(folder.dir, 'onnx', options.decoderFile ?? 'decoder_model_merged.onnx'), sessionOptions);
  try {
    const { height, width } = folder.preprocessor;
    const pixels = (n: number): ort.Tensor => {
      const data = new Float32Array(n * 3 * height * width);
      for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.9; // not constant: realistic activations
      return new ort.Tensor('float32', data, [n, 3, height, width]);
    };
    const hidden = (await encoder.run({ pixel_values: pixels(1) })).last_hidden_state;
    const [, patches, hiddenSize] = hidden.dims as number[];
    const meta = decoder.inputMetadata as unknown as { name: string; shape: (number | string)[] }[];
    const pastInputs = meta.filter((m) => m.name.startsWith('past_key_values.'));

    /** Feeds for `rows` rows of `seq` new tokens after `past` positions (cache from `cache` or empty). */
    const feeds = (rows: number, seq: number, past: number, cache?: ort.InferenceSession.OnnxValueMapType): Record<string, ort.Tensor> => {
      const states = new Float32Array(rows * patches * hiddenSize);
      for (let r = 0; r < rows; r++) states.set(hidden.data as Float32Array, r * patches * hiddenSize);
      const all: Record<string, ort.Tensor> = {
        input_ids: int64(rows * seq, [rows, seq], (i) => (i % seq === 0 && past === 0 ? folder.ids.decoderStart : 5 + (i % 20))),
        attention_mask: int64(rows * (past + seq), [rows, past + seq], () => 1),
        position_ids: int64(rows * seq, [rows, seq], (i) => past + (i % seq)),
        encoder_hidden_states: new ort.Tensor('float32', states, [rows, patches, hiddenSize]),
        use_cache_branch: new ort.Tensor('bool', [past > 0], [1]),
      };
      for (const m of pastInputs) {
        const present = cache?.[m.name.replace('past_key_values', 'present')] as ort.Tensor | undefined;
        const [, heads, , headDim] = m.shape as number[];
        all[m.name] = present ?? new ort.Tensor('float32', new Float32Array(0), [rows, heads, 0, headDim]);
      }
      return Object.fromEntries(decoder.inputNames.map((n) => [n, all[n]]));
    };
    // The decode step fetches what the engine reads back: logits and the self-attention cache.
    const decodeFetches = decoder.outputNames.filter((n) => n === 'logits' || !/\.encoder\./.test(n));
    const encoderInputs = new Map(options.encoderBatches.map((b) => [b, pixels(b)]));
    const prefillFeeds = new Map(options.prefillRows.map((r) => [r, feeds(r, 1, 0)]));
    const decodeFeeds = new Map<number, Record<string, ort.Tensor>>();
    for (const past of options.pasts) {
      const rows = options.decodeRows;
      const filled = await decoder.run(feeds(rows, past, 0)); // a prompt of `past` tokens fills the cache
      decodeFeeds.set(past, feeds(rows, 1, past, filled));
    }
    const samples = { encoder: new Map<number, number[]>(), prefill: new Map<number, number[]>(), decode: new Map<number, number[]>() };
    const push = (m: Map<number, number[]>, k: number, v: number): void => void (m.get(k) ?? m.set(k, []).get(k)!).push(v);
    for (let round = 0; round < options.rounds; round++) {
      for (const [b, x] of encoderInputs) push(samples.encoder, b, await cpuMsPerCall(() => encoder.run({ pixel_values: x }), Math.max(3, Math.round(options.calls / b))));
      for (const [r, f] of prefillFeeds) push(samples.prefill, r, await cpuMsPerCall(() => decoder.run(f), Math.max(3, Math.round(options.calls / Math.sqrt(r)))));
      for (const [p, f] of decodeFeeds) push(samples.decode, p, await cpuMsPerCall(() => decoder.run(f, decodeFetches), Math.max(5, Math.round(options.calls / 2))));
    }
    // A bound is what the calls cost at best: the cheapest round. With the median of rounds, a
    // slow stretch of this shared machine raised it (one run read a 32-row step at 8.9 ms at
    // past 25 and 3.0 ms at past 8, and Iris's generations at 122 % of that bound).
    const best = (m: Map<number, number[]>): Record<number, number> => Object.fromEntries([...m].map(([k, xs]) => [k, Math.min(...xs)]));
    const encoderMsByBatch = best(samples.encoder);
    const prefillMsByRows = best(samples.prefill);
    return {
      encoderMsByBatch,
      prefillMsByRows,
      decodeMsByPast: best(samples.decode),
      decodeRows: options.decodeRows,
      encoderMsPerImage: Math.min(...Object.entries(encoderMsByBatch).map(([b, ms]) => ms / Number(b))),
      prefillMsPerRow: Math.min(...Object.entries(prefillMsByRows).map(([r, ms]) => ms / Number(r))),
    };
  } finally {
    await Promise.all([encoder.release(), decoder.release()]);
  }
}

/** The nearest measured past length's 32-row step, per row. */
export function decodeMsPerRowStep(costs: OrtCosts, past: number): number {
  const pasts = Object.keys(costs.decodeMsByPast).map(Number);
  const nearest = pasts.reduce((a, b) => (Math.abs(b - past) < Math.abs(a - past) ? b : a));
  return costs.decodeMsByPast[nearest] / costs.decodeRows;
}

/** Requests/s if each request cost only its onnxruntime work at the best batch sizes, on `cores` cores. */
export function requestBound(costs: OrtCosts, decodeRowStepsPerRequest: number, past: number, cores: number): { msPerRequest: number; requestsPerSecond: number } {
  const msPerRequest = costs.encoderMsPerImage + costs.prefillMsPerRow + decodeRowStepsPerRequest * decodeMsPerRowStep(costs, past);
  return { msPerRequest, requestsPerSecond: (cores * 1000) / msPerRequest };
}

/** Tokens/s one decoder thread does at `costs.decodeRows` rows. */
export function decodeBound(costs: OrtCosts, past: number): number {
  return 1000 / decodeMsPerRowStep(costs, past);
}
