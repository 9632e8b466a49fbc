// `iris eval <dir>`: the shapes-world quality table and the out-of-domain table, measured
// through the engine on a labelled folder written by training/data.py write_folder.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CliSettings } from './args.ts';
import { readImageFile } from './batch.ts';
import { formatReport, meetsOodSpec, meetsSpec, updateModelCard, type EvalReport, type OodScores, type VariantScores } from './eval-report.ts';
import { joinContinuation, VariantTally, type Job, type LabelRow } from './eval-score.ts';
import { runDtype } from './quantize.ts';
import type { Engine } from '../engine/engine.ts';
import { IrisError, type GenerationOptions, type GenerationRequest, type GenerationResult, type Generator } from '../contract/types.ts';

/** Lines read at a time: bounds memory (image bytes) on large folders. */
const SCENES_PER_CHUNK = 50;
/** Requests in flight at once: the engine batches them; the bound keeps its line from overflowing. */
const WINDOW = 48;

export { joinContinuation };

export interface EvaluateOptions {
  /** false: score the scenes only (no out-of-domain lines, no out-of-grammar questions). Default true. */
  outOfDomain?: boolean;
}

/**
 * The in-domain table from the folder's scenes (lines whose domain is "in" or absent),
 * and, when the folder has any, the out-of-domain table: its "domain": "ood" lines and
 * the scenes' out-of-grammar questions.
 */
export async function evaluateFolder(generator: Generator, dir: string, options: GenerationOptions = {}, evaluate: EvaluateOptions = {}): Promise<EvalReport> {
  const rows = (await readFile(join(dir, 'labels.jsonl'), 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as LabelRow);
  if (rows.length === 0) throw new IrisError('INVALID_OPTIONS', `${dir}/labels.jsonl has no rows`);
  const variants: Record<string, VariantScores> = {};
  const ood: Record<string, OodScores> = {};
  for (const variant of Object.keys(rows[0].images)) {
    const tally = new VariantTally(evaluate.outOfDomain ?? true);
    for (let s = 0; s < rows.length; s += SCENES_PER_CHUNK) {
      await scoreChunk(generator, dir, variant, rows.slice(s, s + SCENES_PER_CHUNK), options, tally);
    }
    variants[variant] = tally.inDomain();
    if (tally.hasOutOfDomain) ood[variant] = tally.outOfDomain();
  }
  const report: EvalReport = {
    model: generator.modelId, folder: dir, measuredWith: 'iris (TypeScript, onnxruntime-node), greedy', date: new Date().toISOString(), variants,
    ...(Object.keys(ood).length > 0 ? { ood } : {}),
  };
  return { ...report, meetsSpec: { inDomain: meetsSpec(report).isMet, outOfDomain: meetsOodSpec(report).isMet } };
}

async function scoreChunk(generator: Generator, dir: string, variant: string, rows: LabelRow[], options: GenerationOptions, tally: VariantTally): Promise<void> {
  const requests: GenerationRequest[] = [];
  const jobs: Job[] = [];
  for (const row of rows) {
    const rowJobs = tally.jobs(row);
    if (rowJobs.length === 0) continue;
    const image = await readImageFile(join(dir, row.images[variant]));
    for (const job of rowJobs) {
      requests.push({ ...job.request, image, options });
      jobs.push(job);
    }
  }
  const results = await generateWindowed(generator, requests, WINDOW);
  results.forEach((result, i) => jobs[i].score(result));
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

export async function runEval(engine: Engine, dir: string | undefined, settings: CliSettings): Promise<number> {
  if (!dir) throw new IrisError('INVALID_OPTIONS', 'eval needs a labelled folder: iris eval <dir>');
  const started = performance.now();
  const dtype = runDtype(settings);
  const report = { ...(await evaluateFolder(engine, dir, settings.options)), dtype };
  const seconds = (performance.now() - started) / 1000;
  const text = formatReport(report);
  if (settings.isJson) console.log(JSON.stringify(report));
  else console.log(`${text}\n(${dtype}, ${seconds.toFixed(1)} s)`);
  const json = JSON.stringify(report, null, 2) + '\n';
  if (settings.outFile) {
    await writeFile(settings.outFile, json);
    console.error(`wrote ${settings.outFile}`);
  }
  // The model folder is tracked: it changes only when asked (npm run train does).
  if (!settings.isModelUpdated) return 0;
  const folder = engine.model.folder.dir;
  // A variant's figures go next to the fp32 ones (eval.q8.json, ...); the model card's table stays fp32.
  const file = join(folder, dtype === 'fp32' ? 'eval.json' : `eval.${dtype}.json`);
  await writeFile(file, json);
  const isCardUpdated = dtype === 'fp32' && (await updateModelCard(join(folder, 'README.md'), text));
  console.error(`wrote ${file}${isCardUpdated ? ' and the tables in README.md' : ''}`);
  return 0;
}
