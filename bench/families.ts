// npm run bench:families [-- --rounds 5 --images 64]
// The two shipped models side by side, in one process, interleaved round by round (the
// order alternates), on the same held-out scenes (training/data.py, the test seed):
// single-request caption latency (one at a time, p50), c32 caption throughput (32 in
// flight), process CPU per caption, the KV-cache bytes a caption holds (from the folder's
// config and the request's token counts), parameters and file sizes. Fresh images every
// round, so each request encodes its image (the embedding cache never hits).
// Writes bench/results/local/families-<date>.json (bench/results/ with IRIS_BENCH_UPDATE=1).
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createEngine } from '../src/engine/create-engine.ts';
import type { Engine } from '../src/engine/engine.ts';
import type { GenerationResult } from '../src/contract/types.ts';
import { ROOT, writeHeldOut } from '../test/helpers.ts';
import { resultsDir } from './results-dir.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string' }, images: { type: 'string' } } });
const ROUNDS = Number(values.rounds ?? 5);
const IMAGES = Number(values.images ?? 64); // per round and measurement
const CONCURRENCY = 32;
const MODELS = ['shapes-base', 'shapes-joint'];

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Bytes of KV cache per cached token slot, and the slots a caption holds (self-attention, plus cross-attention's patches). */
function kvBytes(dir: string, result: GenerationResult): number {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Json;
  const tokens = result.usage.promptTokens + result.usage.completionTokens;
  if (config.model_type === 'llava') {
    const t = config.text_config;
    const perSlot = t.num_hidden_layers * 2 * t.num_key_value_heads * (t.head_dim ?? t.hidden_size / t.num_attention_heads) * 4;
    return perSlot * tokens; // the image tokens are part of the prompt's tokens
  }
  const d = config.decoder;
  const perSlot = d.decoder_layers * 2 * d.d_model * 4;
  return perSlot * (tokens + result.usage.imageTokens); // self-attention slots + one cross-attention slot per patch
}

function sizes(dir: string): { onnxMb: number; fp32Mb: number } {
  const files = readdirSync(join(dir, 'onnx'));
  const mb = (names: string[]): number => names.reduce((n, f) => n + statSync(join(dir, 'onnx', f)).size, 0) / 1e6;
  // What fp32 serving loads: the encoder, the decoder(s) and the embedder, not the variants or the attentions copy.
  const fp32 = files.filter((f) => !/_(fp16|quantized)\.onnx$/.test(f) && !f.startsWith('decoder_with_attentions'));
  return { onnxMb: Math.round(mb(files) * 100) / 100, fp32Mb: Math.round(mb(fp32) * 100) / 100 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

async function measure(engine: Engine, images: Uint8Array[]): Promise<{ p50Ms: number; c32Rps: number; cpuMsPerCaption: number; sample: GenerationResult }> {
  const half = images.length / 2;
  const latencies: number[] = [];
  let sample: GenerationResult | undefined;
  for (const image of images.slice(0, half)) {
    const t0 = performance.now();
    sample = await engine.generate({ task: 'caption', image });
    latencies.push(performance.now() - t0);
  }
  const rest = images.slice(half);
  const c0 = cpuMs();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < rest.length) await engine.generate({ task: 'caption', image: rest[next++] });
  }));
  const seconds = (performance.now() - t0) / 1000;
  return { p50Ms: median(latencies), c32Rps: rest.length / seconds, cpuMsPerCaption: (cpuMs() - c0) / rest.length, sample: sample! };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'iris-families-'));
  try {
    writeHeldOut(work, ROUNDS * IMAGES * 2 + 8);
    const labels = readFileSync(join(work, 'labels.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json);
    const all = labels.map((l) => new Uint8Array(readFileSync(join(work, l.images.png128))));
    const engines = new Map<string, Engine>();
    for (const name of MODELS) engines.set(name, await createEngine({ modelDir: join(ROOT, 'assets/models', name) }));
    // Warm both up (first calls allocate), on images no round uses.
    for (const engine of engines.values()) for (const image of all.slice(-8)) await engine.generate({ task: 'caption', image });
    const rounds: Record<string, ReturnType<typeof measure> extends Promise<infer R> ? Omit<R, 'sample'>[] : never> = Object.fromEntries(MODELS.map((m) => [m, []]));
    const kv: Record<string, number> = {};
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? MODELS : [...MODELS].reverse();
      for (const [k, name] of order.entries()) {
        // Each model gets its own fresh images each round (no embedding-cache hits), the same set across models.
        const images = all.slice((r * 2 + k) * IMAGES, (r * 2 + k + 1) * IMAGES);
        const { sample, ...m } = await measure(engines.get(name)!, images);
        rounds[name].push(m);
        kv[name] = kvBytes(join(ROOT, 'assets/models', name), sample);
        console.error(`round ${r + 1} ${name}: p50 ${m.p50Ms.toFixed(1)} ms, c32 ${m.c32Rps.toFixed(1)} req/s, ${m.cpuMsPerCaption.toFixed(2)} ms CPU per caption`);
      }
    }
    for (const engine of engines.values()) await engine.release();
    const summary = Object.fromEntries(MODELS.map((name) => {
      const rs = rounds[name];
      const dir = join(ROOT, 'assets/models', name);
      const evalJson = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')) as Json;
      return [name, {
        ...sizes(dir),
        p50Ms: median(rs.map((x) => x.p50Ms)), c32Rps: median(rs.map((x) => x.c32Rps)), cpuMsPerCaption: median(rs.map((x) => x.cpuMsPerCaption)),
        kvKbPerCaption: Math.round(kv[name] / 102.4) / 10,
        caption: Object.fromEntries(Object.entries(evalJson.variants as Json).map(([v, s]) => [v, s.caption])),
      }];
    }));
    const [a, b] = MODELS.map((m) => summary[m]);
    const report = {
      date: new Date().toISOString(), rounds: ROUNDS, imagesPerMeasurement: IMAGES, concurrency: CONCURRENCY,
      loadAverage: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number), models: summary,
      ratios: { 'p50 joint/base': b.p50Ms / a.p50Ms, 'c32 req/s joint/base': b.c32Rps / a.c32Rps, 'cpu per caption joint/base': b.cpuMsPerCaption / a.cpuMsPerCaption, 'kv bytes joint/base': b.kvKbPerCaption / a.kvKbPerCaption },
    };
    console.log(JSON.stringify(report, null, 2));
    const dir = resultsDir();
    await writeFile(join(dir, `families-${report.date.slice(0, 10)}.json`), `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
