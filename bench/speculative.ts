// npm run bench:speculative [-- --model DIR --draft DIR --rounds N --threads N --speculative-max-batch N --speculative-drafts K]
// Speculative decoding on one model folder: single-stream decode tokens/s with plain
// decoding, draft-model drafts (`<model>/draft/` or --draft), n-gram drafts and Medusa heads (`<model>/medusa/`), with
// their acceptance rates and a check that greedy output is identical; then in-process
// throughput at 32 concurrent requests with speculation on (the server's default: above
// --speculative-max-batch running rows only while mostly accepted), forced on at every batch size, and off.
// Requests: each sample scene's caption and its continuation prompt (assets/samples).
// Writes bench/results/speculative-<model>-<date>.json and .png.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../src/config/config.ts';
import { DEFAULT_MODEL_DIR } from '../src/model/load.ts';
import type { GenerationRequest, SpeculativeMode } from '../src/contract/types.ts';
import { ROOT } from '../test/helpers.ts';
import { renderChart } from './chart.ts';
import { measureSpeculative } from './speculative-measure.ts';
import { resultsDir, shown } from './results-dir.ts';

const COLORS: Record<string, string> = { off: '#3b6fd8', draft: '#2e9e5b', ngram: '#e08a1e', medusa: '#9b3fd1', 'draft always': '#8fd1a8', 'ngram always': '#f2c27f' };
const { values } = parseArgs({ options: { model: { type: 'string' }, draft: { type: 'string' }, rounds: { type: 'string' }, threads: { type: 'string' }, 'speculative-max-batch': { type: 'string' }, 'speculative-drafts': { type: 'string' } } });
const modelDir = resolve(values.model ?? DEFAULT_MODEL_DIR);
const draftDir = values.draft ? resolve(values.draft) : join(modelDir, 'draft');
const hasDraft = existsSync(join(draftDir, 'onnx/decoder_model_merged.onnx'));
const hasHeads = existsSync(join(modelDir, 'medusa/onnx/decoder_model_merged.onnx'));
const modes: SpeculativeMode[] = ['off', ...(hasDraft ? ['draft' as const] : []), 'ngram', ...(hasHeads ? ['medusa' as const] : [])];
const threads = Number(values.threads ?? 1);
const speculativeMaxBatch = Number(values['speculative-max-batch'] ?? DEFAULTS.models.speculativeMaxBatch);
const speculativeDrafts = values['speculative-drafts'] ? Number(values['speculative-drafts']) : undefined;

async function sampleRequests(): Promise<GenerationRequest[]> {
  const dir = join(ROOT, 'assets/samples');
  const lines = (await readFile(join(dir, 'labels.jsonl'), 'utf8')).split('\n').filter((l) => l.trim());
  const scenes = lines.map((l) => JSON.parse(l) as { image: string; continuation: { prefix: string } });
  return (await Promise.all(scenes.map(async (s): Promise<GenerationRequest[]> => {
    const image = new Uint8Array(await readFile(join(dir, s.image)));
    return [{ task: 'caption', image }, { task: 'generate', image, prompt: s.continuation.prefix }];
  }))).flat();
}

const requests = await sampleRequests();
console.log(`model ${basename(modelDir)}, draft ${hasDraft ? draftDir : 'none'}, ${requests.length} requests, ${threads} thread(s)`);
const measured = await measureSpeculative(requests, modes, { modelDir, draftDir: hasDraft ? draftDir : undefined, threads, rounds: Number(values.rounds ?? 5), speculativeMaxBatch, speculativeDrafts });
const plain = measured.modes.off.singleDecodeTokensPerSecond.best;
const result = {
  model: basename(modelDir),
  draft: hasDraft ? basename(resolve(draftDir, '..')) + '/' + basename(draftDir) : null,
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
  threads,
  speculativeMaxBatch,
  speculativeDrafts: speculativeDrafts ?? DEFAULTS.models.speculativeDrafts,
  greedyIdentical: measured.identical,
  singleStream: Object.fromEntries(Object.entries(measured.modes).map(([m, f]) => [m, { ...f, speedup: f.singleDecodeTokensPerSecond.best / plain }])),
  concurrent32: measured.concurrent.tokensPerSecond,
};
console.log(JSON.stringify(result, null, 2));

const out = resultsDir();
await mkdir(out, { recursive: true });
const stem = `speculative-${result.model}-${result.date.slice(0, 10)}`;
await writeFile(join(out, `${stem}.json`), JSON.stringify(result, null, 2) + '\n');
const bar = (label: string, value: number) => ({ label, value, color: COLORS[label] ?? '#888' });
const png = await renderChart(`${result.model}: speculative decoding, ${threads} thread(s)`, [
  { title: 'single-stream decode', unit: 'decode tokens/s, best round (higher is better)', bars: modes.map((m) => bar(m, measured.modes[m].singleDecodeTokensPerSecond.best)) },
  { title: 'acceptance rate', unit: 'accepted / drafted tokens', bars: modes.filter((m) => m !== 'off').map((m) => bar(m, measured.modes[m].acceptanceRate ?? 0)) },
  { title: '32 concurrent requests', unit: `tokens/s, best round ("always": at any batch size)`, bars: Object.entries(measured.concurrent.tokensPerSecond).map(([s, v]) => bar(s, v.best)) },
]);
await writeFile(join(out, `${stem}.png`), png);
console.log(`wrote ${shown(join(resultsDir(), stem))}.json and .png`);
