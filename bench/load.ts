// npm run bench:load [-- --model DIR --levels 1,4,16,32,64 --per-client 2 --max-new-tokens 24 --targets iris,serial,tjs --suffix NAME]
// The engine's load benchmark: captioning and question requests with distinct images over
// real HTTP, from 1 to 64 concurrent clients, against three servers on the same model
// folder, each in its own process: Iris (continuous batching), Iris with batching off
// (--max-batch-size 1: one request at a time) and transformers.js (bench/tjs-server.ts).
// Reports requests/s, generated tokens/s, time to first token and per output token
// (p50/p95) and the server's peak RSS; JSON and a PNG chart go to bench/results/.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../src/model/load.ts';
import { ROOT, syntheticImage } from '../test/helpers.ts';
import { irisSender, runLevel, tjsSender, type LevelResult, type LoadRequest, type Send } from './load-client.ts';
import { renderLineChart } from './load-chart.ts';
import { resultsDir, shown } from './results-dir.ts';

const { values } = parseArgs({ options: {
  model: { type: 'string' }, levels: { type: 'string' }, 'per-client': { type: 'string' },
  'max-new-tokens': { type: 'string' }, targets: { type: 'string' }, suffix: { type: 'string' },
} });
const fallback = join(ROOT, 'assets/models/tiny-random');
const modelDir = resolve(values.model ?? (existsSync(join(DEFAULT_MODEL_DIR, 'onnx')) ? DEFAULT_MODEL_DIR : fallback));
const levels = (values.levels ?? '1,4,16,32,64').split(',').map(Number);
const perClient = Number(values['per-client'] ?? 2);
const maxNewTokens = Number(values['max-new-tokens'] ?? 24);
const chosen = new Set((values.targets ?? 'iris,serial,tjs').split(','));

interface Target {
  name: string;
  label: string;
  color: string;
  args: string[];
  ready: RegExp;
  sender: (url: string) => Send;
}

const iris = (batch: number): string[] => ['src/server.ts', '--port', '0', '--model', `m=${modelDir}`, '--max-batch-size', String(batch), '--max-queued', '512', '--request-timeout-ms', '600000', '--query-max-cost', '100000'];
const TARGETS: Target[] = [
  { name: 'iris', label: 'Iris (continuous batching)', color: '#3b6fd8', args: iris(32), ready: /serving (http:\S+)/, sender: irisSender },
  { name: 'serial', label: 'Iris, batching off', color: '#9db5e8', args: iris(1), ready: /serving (http:\S+)/, sender: irisSender },
  { name: 'tjs', label: 'transformers.js', color: '#e08a1e', args: ['bench/tjs-server.ts', modelDir], ready: /tjs: serving (http:\S+)/, sender: tjsSender },
];

/** Distinct images (no embedding-cache hits): the held-out set when present, else synthetic scenes. */
async function imagePool(count: number): Promise<{ image: Uint8Array; question: string }[]> {
  const heldOut = join(ROOT, 'training/data/test');
  if (existsSync(join(heldOut, 'labels.jsonl'))) {
    const rows = readFileSync(join(heldOut, 'labels.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).slice(0, count);
    return rows.map((l) => {
      const r = JSON.parse(l) as { images: { png128: string }; questions: { question: string }[] };
      return { image: new Uint8Array(readFileSync(join(heldOut, r.images.png128))), question: r.questions[0].question };
    });
  }
  return Promise.all(Array.from({ length: count }, async (_, i) => ({ image: await syntheticImage(64 + (i % 64), 64 + (i >> 6), i + 1), question: 'how many shapes are there?' })));
}

async function start(target: Target): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...target.args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolveUrl, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = target.ready.exec(out);
      if (match) resolveUrl(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`${target.name} exited with ${code} before serving`)));
  });
  if (target.name !== 'tjs') while ((await fetch(url.replace('/graphql', '/ready')).catch(() => undefined))?.status !== 200) await sleep(50);
  return { child, url };
}

function rssMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function measureTarget(target: Target, pool: { image: Uint8Array; question: string }[]): Promise<(LevelResult & { peakRssMb: number })[]> {
  const { child, url } = await start(target);
  const send = target.sender(url);
  const requestsOf = (from: number, n: number): LoadRequest[] =>
    pool.slice(from, from + n).map((p, i) => (i % 2 === 0 ? { task: 'caption', image: p.image } : { task: 'answer', image: p.image, question: p.question }));
  try {
    await runLevel(send, 2, requestsOf(pool.length - 4, 4), maxNewTokens); // warm-up, on images no level uses
    const out: (LevelResult & { peakRssMb: number })[] = [];
    let offset = 0;
    for (const concurrency of levels) {
      const n = Math.max(16, concurrency * perClient);
      let peakRssMb = rssMb(child.pid!, 'VmRSS');
      const sampler = setInterval(() => (peakRssMb = Math.max(peakRssMb, rssMb(child.pid!, 'VmRSS'))), 50);
      const result = await runLevel(send, concurrency, requestsOf(offset, n), maxNewTokens);
      clearInterval(sampler);
      offset += n;
      out.push({ ...result, peakRssMb });
      console.log(`${target.name.padEnd(6)} c=${String(concurrency).padStart(2)}: ${result.requestsPerSecond.toFixed(1)} req/s, ${result.tokensPerSecond.toFixed(0)} tok/s, ` +
        `TTFT p50 ${result.firstTokenMs.p50.toFixed(0)} p95 ${result.firstTokenMs.p95.toFixed(0)} ms, TPOT p50 ${result.perOutputTokenMs.p50.toFixed(1)} ms, ` +
        `latency p95 ${result.latencyMs.p95.toFixed(0)} ms, failed ${result.failed}, peak RSS ${peakRssMb.toFixed(0)} MB`);
    }
    return out;
  } finally {
    child.kill('SIGTERM');
  }
}

const targets = TARGETS.filter((t) => chosen.has(t.name));
const pool = await imagePool(levels.reduce((n, c) => n + Math.max(16, c * perClient), 0) + 4);
const results: Record<string, (LevelResult & { peakRssMb: number })[]> = {};
for (const target of targets) results[target.name] = await measureTarget(target, pool);

const at = (name: string, c: number): LevelResult | undefined => results[name]?.find((r) => r.concurrency === c);
const ratio = (a: string, b: string, c: number): number | null => {
  const [x, y] = [at(a, c), at(b, c)];
  return x && y ? x.tokensPerSecond / y.tokensPerSecond : null;
};
const model = basename(modelDir);
const date = new Date().toISOString();
const summary = {
  model, date, maxNewTokens, levels,
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
  results,
  throughputRatios: Object.fromEntries(levels.map((c) => [c, { irisOverSerial: ratio('iris', 'serial', c), irisOverTransformersJs: ratio('iris', 'tjs', c) }])),
};
const dir = resultsDir();
await mkdir(dir, { recursive: true });
// One file per model and day; --suffix keeps an earlier run of the same day (e.g. before and after a change).
const stem = `load-${model}-${date.slice(0, 10)}${values.suffix ? `-${values.suffix}` : ''}`;
await writeFile(join(dir, `${stem}.json`), JSON.stringify(summary, null, 2) + '\n');
const series = (pick: (r: LevelResult) => number) => targets.map((t) => ({ label: t.label, color: t.color, points: results[t.name].map((r) => ({ x: r.concurrency, y: pick(r) })) }));
await writeFile(join(dir, `${stem}.png`), await renderLineChart(`${model}: ${maxNewTokens} max new tokens, ${cpus().length} cores`, [
  { title: 'throughput', unit: 'generated tokens/s vs concurrent clients (higher is better)', series: series((r) => r.tokensPerSecond) },
  { title: 'p95 latency', unit: 'ms per request vs concurrent clients (lower is better)', series: series((r) => r.latencyMs.p95) },
]));
console.log(JSON.stringify(summary.throughputRatios));
console.log(`wrote ${shown(join(resultsDir(), stem))}.json and .png`);
