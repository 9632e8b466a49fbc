// The benchmark's measurements: Iris (KV cache on and off) and transformers.js on the same
// folder and images. Medians over repeated runs, after a warm-up run each.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AutoModelForVision2Seq, AutoProcessor, RawImage, Tensor, env } from '@huggingface/transformers';
import { ReferenceDecoder } from '../src/engine/reference-decoder.ts';
import type { GenerationRequest } from '../src/contract/types.ts';

env.allowRemoteModels = false;
env.useFSCache = false;

export interface Measurement {
  /** Median wall time of one request, ms. */
  latencyMs: number;
  /** Median generated tokens per request. */
  tokens: number;
  /** Generated tokens per second of whole-request time. */
  tokensPerSecond: number;
  /** Tokens after the first per second of decode time (null where it cannot be separated). */
  decodeTokensPerSecond: number | null;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export async function loadImages(dir: string, names: string[]): Promise<Uint8Array[]> {
  return Promise.all(names.map(async (n) => new Uint8Array(await readFile(join(dir, n)))));
}

/** Iris end to end (decode, preprocess, encode, generate); the embedding cache is bypassed by varying images. */
export async function measureIris(pipeline: ReferenceDecoder, images: Uint8Array[], newTokens: number | undefined, repeats: number): Promise<Measurement> {
  const options = newTokens ? { maxNewTokens: newTokens, minNewTokens: newTokens } : {};
  const run = async (image: Uint8Array) => {
    // a fresh copy with a trailing byte: same pixels, new content hash, so nothing is cached
    const bytes = new Uint8Array(image.length + 1);
    bytes.set(image);
    const request: GenerationRequest = { task: 'caption', image: bytes, options };
    const started = performance.now();
    const result = await pipeline.generate(request);
    return { ms: performance.now() - started, tokens: result.tokens.length + (result.finishReason === 'eos' ? 1 : 0), decodeMs: result.timings.decodeMs };
  };
  await run(images[0]);
  const runs = [];
  for (let i = 0; i < repeats; i++) runs.push(await run(images[i % images.length]));
  return summarize(runs);
}

type TjsProcessor = Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>;
type TjsModel = Awaited<ReturnType<typeof AutoModelForVision2Seq.from_pretrained>>;

export async function loadTransformersJs(dir: string, threads: number): Promise<{ processor: TjsProcessor; model: TjsModel }> {
  const processor = await AutoProcessor.from_pretrained(dir, { local_files_only: true });
  const model = await AutoModelForVision2Seq.from_pretrained(dir, {
    local_files_only: true,
    dtype: 'fp32',
    session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
  });
  return { processor, model };
}

/** transformers.js end to end, the way its docs use it: RawImage → processor → generate. */
export async function measureTransformersJs(tjs: { processor: TjsProcessor; model: TjsModel }, images: Uint8Array[], newTokens: number | undefined, maxNewTokens: number, repeats: number): Promise<Measurement> {
  const run = async (image: Uint8Array) => {
    const started = performance.now();
    const { pixel_values } = await tjs.processor(await RawImage.fromBlob(new Blob([image as Uint8Array<ArrayBuffer>])));
    const out = (await tjs.model.generate({
      pixel_values,
      max_new_tokens: newTokens ?? maxNewTokens,
      ...(newTokens ? { min_new_tokens: newTokens } : {}),
      do_sample: false,
    })) as Tensor;
    const ms = performance.now() - started;
    return { ms, tokens: out.dims[1] - 1, decodeMs: NaN };
  };
  await run(images[0]);
  const runs = [];
  for (let i = 0; i < repeats; i++) runs.push(await run(images[i % images.length]));
  return summarize(runs);
}

function summarize(runs: { ms: number; tokens: number; decodeMs: number }[]): Measurement {
  const decode = runs.map((r) => (r.tokens - 1) / (r.decodeMs / 1000)).filter(Number.isFinite);
  return {
    latencyMs: median(runs.map((r) => r.ms)),
    tokens: median(runs.map((r) => r.tokens)),
    tokensPerSecond: median(runs.map((r) => r.tokens / (r.ms / 1000))),
    decodeTokensPerSecond: decode.length > 0 ? median(decode) : null,
  };
}
