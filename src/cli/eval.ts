// `iris eval <dir>`: the shapes-world quality table, measured through the engine on a
// labelled folder written by training/data.py write_folder.
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { CliSettings } from './args.ts';
import { readImageFile } from './batch.ts';
import { formatTable, meetsSpec, updateModelCard, type EvalReport, type VariantScores } from './eval-report.ts';
import { runDtype } from './quantize.ts';
import type { Engine } from '../engine/engine.ts';
import { IrisError, type GenerationOptions, type GenerationRequest, type GenerationResult, type Generator } from '../contract/types.ts';

interface LabelRow {
  id: number;
  images: Record<string, string>;
  caption: string;
  questions: { kind: string; question: string; answer: string }[];
  continuation: { prefix: string; caption: string };
}

/** Scenes read at a time: bounds memory (image bytes) on large folders. */
const SCENES_PER_CHUNK = 50;
/** Requests in flight at once: the engine batches them; the bound keeps its line from overflowing. */
const WINDOW = 48;

/** Glue a prefix and its completion the way the caption is written ("a , b" → "a, b"). */
export function joinContinuation(prefix: string, completion: string): string {
  return `${prefix} ${completion}`.replace(/\s+/g, ' ').replace(/ ([,?])/g, '$1').trim();
}

export async function evaluateFolder(generator: Generator, dir: string, options: GenerationOptions = {}): Promise<EvalReport> {
  const rows = (await readFile(join(dir, 'labels.jsonl'), 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as LabelRow);
  if (rows.length === 0) throw new IrisError('INVALID_OPTIONS', `${dir}/labels.jsonl has no rows`);
  const variants: Record<string, VariantScores> = {};
  for (const variant of Object.keys(rows[0].images)) {
    const counts = { caption: 0, continuation: 0, kinds: new Map<string, [number, number]>() };
    for (let s = 0; s < rows.length; s += SCENES_PER_CHUNK) {
      await scoreChunk(generator, dir, variant, rows.slice(s, s + SCENES_PER_CHUNK), options, counts);
    }
    variants[variant] = scores(rows.length, counts);
  }
  return { model: generator.modelId, folder: resolve(dir), measuredWith: 'iris (TypeScript, onnxruntime-node), greedy', date: new Date().toISOString(), variants };
}

type Counts = { caption: number; continuation: number; kinds: Map<string, [number, number]> };

async function scoreChunk(generator: Generator, dir: string, variant: string, rows: LabelRow[], options: GenerationOptions, counts: Counts): Promise<void> {
  const requests: GenerationRequest[] = [];
  const checks: ((text: string) => void)[] = [];
  for (const row of rows) {
    const image = await readImageFile(join(dir, row.images[variant]));
    requests.push({ task: 'caption', image, options });
    checks.push((text) => (counts.caption += Number(text.trim() === row.caption)));
    requests.push({ task: 'generate', image, prompt: row.continuation.prefix, options });
    checks.push((text) => (counts.continuation += Number(joinContinuation(row.continuation.prefix, text) === row.continuation.caption)));
    for (const q of row.questions) {
      requests.push({ task: 'answer', image, question: q.question, options });
      checks.push((text) => {
        const tally = counts.kinds.get(q.kind) ?? [0, 0];
        counts.kinds.set(q.kind, [tally[0] + Number(text.trim() === q.answer), tally[1] + 1]);
      });
    }
  }
  const results = await generateWindowed(generator, requests, WINDOW);
  results.forEach((result, i) => checks[i](result.text));
}

/** Every request through the generator with at most `window` in flight; results in order. */
async function generateWindowed(generator: Generator, requests: readonly GenerationRequest[], window: number): Promise<GenerationResult[]> {
  const results: GenerationResult[] = new Array(requests.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requests.length) {
      const i = next++;
      results[i] = await generator.generate(requests[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, requests.length) }, worker));
  return results;
}

function pct(ok: number, total: number): number {
  return total === 0 ? 0 : Math.round((10000 * ok) / total) / 100;
}

function scores(numScenes: number, counts: Counts): VariantScores {
  const kinds = [...counts.kinds.entries()].sort(([a], [b]) => a.localeCompare(b));
  const okAnswers = kinds.reduce((sum, [, [ok]]) => sum + ok, 0);
  const numQuestions = kinds.reduce((sum, [, [, n]]) => sum + n, 0);
  return {
    scenes: numScenes,
    caption: pct(counts.caption, numScenes),
    answer: pct(okAnswers, numQuestions),
    questions: numQuestions,
    continuation: pct(counts.continuation, numScenes),
    by_kind: Object.fromEntries(kinds.map(([kind, [ok, n]]) => [kind, pct(ok, n)])),
  };
}

export async function runEval(engine: Engine, dir: string | undefined, settings: CliSettings): Promise<number> {
  if (!dir) throw new IrisError('INVALID_OPTIONS', 'eval needs a labelled folder: iris eval <dir>');
  const started = performance.now();
  const dtype = runDtype(settings);
  const report = { ...(await evaluateFolder(engine, dir, settings.options)), dtype };
  const seconds = (performance.now() - started) / 1000;
  const table = formatTable(report);
  const verdict = meetsSpec(report);
  if (settings.isJson) console.log(JSON.stringify(report));
  else console.log(`${table}\n\n${verdict.summary}\n(${dtype}, ${seconds.toFixed(1)} s)`);
  const folder = engine.model.folder.dir;
  // A variant's figures go next to the fp32 ones (eval.q8.json, ...); the model card's table stays fp32.
  const file = join(folder, dtype === 'fp32' ? 'eval.json' : `eval.${dtype}.json`);
  await writeFile(file, JSON.stringify(report, null, 2) + '\n');
  const isCardUpdated = dtype === 'fp32' && (await updateModelCard(join(folder, 'README.md'), `${table}\n\n${verdict.summary}`));
  console.error(`wrote ${file}${isCardUpdated ? ' and the table in README.md' : ''}`);
  return 0;
}
