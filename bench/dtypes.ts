// npm run bench:dtypes [-- --model DIR --rounds N --threads N]
// fp32 vs q8 (*_quantized.onnx) vs fp16 (*_fp16.onnx) on one model folder: file sizes,
// single-stream decode tokens/s and a 32-row engine batch (interleaved rounds, see
// dtype-measure.ts), peak RSS (each dtype in its own process) and the quality table that
// `iris eval --dtype D` left in the folder (eval.json, eval.q8.json, eval.fp16.json).
// Folders without variants are quantized into a temporary copy. Writes bench/results/dtypes-<model>-<date>.json and .png.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import type { EvalReport } from '../src/cli/eval-report.ts';
import { onnxFiles } from '../src/model/files.ts';
import { DEFAULT_MODEL_DIR } from '../src/model/load.ts';
import { quantizeFolder } from '../src/quantize/quantize-folder.ts';
import { ROOT } from '../test/helpers.ts';
import { renderChart } from './chart.ts';
import { measureSpeeds, type SpeedFigures } from './dtype-measure.ts';
import { loadImages } from './measure.ts';
import { resultsDir, shown } from './results-dir.ts';

const DTYPES = ['fp32', 'q8', 'fp16'] as const;
const COLORS = { fp32: '#3b6fd8', q8: '#2e9e5b', fp16: '#e08a1e' } as const;
const { values } = parseArgs({ options: { model: { type: 'string' }, rounds: { type: 'string' }, threads: { type: 'string' } } });
const fallback = join(ROOT, 'assets/models/tiny-random');
const modelDir = resolve(values.model ?? (existsSync(join(DEFAULT_MODEL_DIR, 'onnx')) ? DEFAULT_MODEL_DIR : fallback));
const threads = values.threads ?? '1';

/** The folder itself when its variants exist, else a quantized temporary copy. */
async function withVariants(dir: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  if (existsSync(join(dir, 'onnx', onnxFiles('q8').decoderFile)) && existsSync(join(dir, 'onnx', onnxFiles('fp16').decoderFile))) return { dir, cleanup: async () => {} };
  const root = await mkdtemp(join(tmpdir(), 'iris-bench-dtypes-'));
  await cp(dir, join(root, 'model'), { recursive: true });
  await quantizeFolder(join(root, 'model'), { dtypes: ['q8', 'fp16'] });
  return { dir: join(root, 'model'), cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** Bytes Iris loads for a dtype: the encoder and the merged decoder. */
async function loadedBytes(dir: string, dtype: (typeof DTYPES)[number]): Promise<number> {
  const files = onnxFiles(dtype);
  return (await stat(join(dir, 'onnx', files.encoderFile))).size + (await stat(join(dir, 'onnx', files.decoderFile))).size;
}

async function quality(dir: string, dtype: string): Promise<EvalReport['variants'] | null> {
  const file = join(dir, dtype === 'fp32' ? 'eval.json' : `eval.${dtype}.json`);
  return existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as EvalReport).variants : null;
}

interface Row extends SpeedFigures {
  dtype: (typeof DTYPES)[number];
  peakRssMB: number;
  bytes: number;
  quality: EvalReport['variants'] | null;
}

const variants = await withVariants(modelDir);
const samples = join(ROOT, 'assets/samples');
const images = await loadImages(samples, (await readdir(samples)).filter((f) => f.endsWith('.png')).sort());
const speeds = await measureSpeeds(variants.dir, DTYPES, images, { rounds: Number(values.rounds ?? 5), threads: Number(threads) });
const run = promisify(execFile);
const rows: Row[] = [];
for (const dtype of DTYPES) {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/dtype-worker.ts', '--model', variants.dir, '--dtype', dtype, '--threads', threads], { cwd: ROOT });
  const { peakRssMB } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { peakRssMB: number };
  rows.push({ dtype, ...speeds[dtype], peakRssMB, bytes: await loadedBytes(variants.dir, dtype), quality: await quality(modelDir, dtype) });
  console.log(JSON.stringify(rows.at(-1)));
}
await variants.cleanup();

const result = { model: basename(modelDir), date: new Date().toISOString(), machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version }, threads: Number(threads), rows };
const out = resultsDir();
await mkdir(out, { recursive: true });
const stem = `dtypes-${result.model}-${result.date.slice(0, 10)}`;
await writeFile(join(out, `${stem}.json`), JSON.stringify(result, null, 2) + '\n');
const bars = (pick: (r: Row) => number) => rows.map((r) => ({ label: r.dtype, value: pick(r), color: COLORS[r.dtype] }));
const png = await renderChart(`${result.model}: fp32 vs q8 vs fp16, ${threads} thread(s)`, [
  { title: 'model files', unit: 'MB, encoder + decoder (lower is better)', bars: bars((r) => r.bytes / 1e6) },
  { title: 'single-stream decode', unit: 'decode tokens/s, best round (higher is better)', bars: bars((r) => r.singleDecodeTokensPerSecond.best) },
  { title: '32 rows on the engine', unit: 'tokens/s, best round (higher is better)', bars: bars((r) => r.batch32TokensPerSecond.best) },
  { title: 'decoder step, 1 row', unit: 'µs, best round (lower is better)', bars: bars((r) => r.decoderStepMicros.rows1.best) },
  { title: 'decoder step, 32 rows', unit: 'µs, best round (lower is better)', bars: bars((r) => r.decoderStepMicros.rows32.best) },
  { title: 'peak RSS', unit: 'MB (lower is better)', bars: bars((r) => r.peakRssMB) },
]);
await writeFile(join(out, `${stem}.png`), png);
console.log(`wrote ${shown(join(resultsDir(), stem))}.json and .png`);
