// `iris eval --attention`: the pointing game. For each color, shape and size word of a
// correct caption of a scene with two or three objects, the attention map of the decoder
// call that produced the word counts as a hit when its highest patch's centre lies inside
// the described object's bounding box, widened by half a patch. Scored for every way of
// combining the layers (fusion/attention.ts AGGREGATIONS) and for each layer alone, so
// each model's map is chosen by measurement: the aggregation whose worst word kind scores
// best (`--update-model` writes it into the folder's attention.json).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AGGREGATIONS, peakOf } from '../../fusion/attention.ts';
import { IrisError, type GeneratedToken, type Generator } from '../contract/types.ts';
import { readImageFile } from './batch.ts';

/** An object as labelled by training/data.py write_folder: its words and its box in the 128 px image. */
interface LabelObject {
  size: string;
  color: string;
  shape: string;
  bbox_128: [number, number, number, number]; // x0, y0, x1, y1 in pixels of the 128 px reference image
}

interface PointingRow {
  domain?: string;
  images: Record<string, string>;
  caption: string;
  objects?: LabelObject[]; // in caption order
}

export type WordKind = 'color' | 'shape' | 'size';
export const WORD_KINDS: readonly WordKind[] = ['color', 'shape', 'size'];

export interface PointingReport {
  variant: string;
  /** Correct captions of 2-3 object scenes that were scored, of the scenes with boxes. */
  scenes: number;
  scenesWithBoxes: number;
  /** The map the model uses now (its attention.json, else the default). */
  defaultAggregation: string;
  /** The aggregation whose lowest rate over the word kinds is highest: the one `--update-model` keeps. */
  bestAggregation: string;
  /** Hit rate in % per map (an aggregation name, or `layer N`) per word kind, and the words counted. */
  rates: Record<string, Record<WordKind, number>>;
  words: Record<WordKind, number>;
  /** Mean share of attention on the image per token (null for cross-attention, where it is all on the image). */
  imageShare: number | null;
}

/** Each object word of a caption's tokens, with its kind and the object it describes (objects are listed in caption order). */
export function objectWords(tokens: readonly GeneratedToken[], objects: readonly LabelObject[]): { token: GeneratedToken; kind: WordKind; object: LabelObject }[] {
  const out: { token: GeneratedToken; kind: WordKind; object: LabelObject }[] = [];
  let k = 0;
  for (const token of tokens) {
    const object = objects[k];
    if (!object) break;
    const word = token.text.trim();
    if (word === object.size) out.push({ token, kind: 'size', object });
    else if (word === object.color) out.push({ token, kind: 'color', object });
    else if (word === object.shape) {
      out.push({ token, kind: 'shape', object });
      k++;
    }
  }
  return out;
}

/** Does the map's highest patch centre fall in the box, widened by half a patch (128 px coordinates)? */
export function isHit(weights: ArrayLike<number>, rows: number, cols: number, box: readonly number[]): boolean {
  const peak = peakOf(weights);
  const [cellW, cellH] = [128 / cols, 128 / rows];
  const [x, y] = [((peak % cols) + 0.5) * cellW, (Math.floor(peak / cols) + 0.5) * cellH];
  const [x0, y0, x1, y1] = box;
  return x >= x0 - cellW / 2 && x <= x1 + cellW / 2 && y >= y0 - cellH / 2 && y <= y1 + cellH / 2;
}

export async function pointingGame(generator: Generator, dir: string, modelAggregation: string, variant = 'png128', window = 48): Promise<PointingReport> {
  const rows = (await readFile(join(dir, 'labels.jsonl'), 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as PointingRow);
  const scenes = rows.filter((r) => (r.domain ?? 'in') === 'in' && r.objects && r.objects.length >= 2);
  if (scenes.length === 0) throw new IrisError('INVALID_OPTIONS', `${dir}/labels.jsonl has no scenes with object boxes (write it with training/data.py write_folder)`);
  const hits = new Map<string, Record<WordKind, number>>();
  const words: Record<WordKind, number> = { color: 0, shape: 0, size: 0 };
  const shares: number[] = [];
  let scored = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < scenes.length) {
      const row = scenes[next++];
      const image = await readImageFile(join(dir, row.images[variant]));
      const result = await generator.generate({ task: 'caption', image, options: { attention: true } });
      if (result.text.trim() !== row.caption) continue;
      scored++;
      for (const { token, kind, object } of objectWords(result.tokens, row.objects!)) {
        const attention = token.attention!;
        words[kind]++;
        if (attention.imageShare !== null) shares.push(attention.imageShare);
        const maps: [string, ArrayLike<number>][] = [
          ...Object.entries(AGGREGATIONS).map(([name, combine]): [string, ArrayLike<number>] => [name, combine(attention.layers.map((l) => Float32Array.from(l)))]),
          ...attention.layers.map((l, i): [string, ArrayLike<number>] => [`layer ${i}`, l]),
        ];
        for (const [name, weights] of maps) {
          const tally = hits.get(name) ?? { color: 0, shape: 0, size: 0 };
          tally[kind] += Number(isHit(weights, attention.rows, attention.cols, object.bbox_128));
          hits.set(name, tally);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, scenes.length) }, worker));
  const pct = (n: number, total: number): number => (total === 0 ? 0 : Math.round((10000 * n) / total) / 100);
  const rates = Object.fromEntries([...hits].map(([name, t]) => [name, { color: pct(t.color, words.color), shape: pct(t.shape, words.shape), size: pct(t.size, words.size) }]));
  const imageShare = shares.length === 0 ? null : shares.reduce((a, b) => a + b, 0) / shares.length;
  return { variant, scenes: scored, scenesWithBoxes: scenes.length, defaultAggregation: modelAggregation, bestAggregation: bestOf(rates), rates, words, imageShare };
}

/** The aggregation (not a single layer) whose worst word kind scores highest; the first listed on ties. */
export function bestOf(rates: Record<string, Record<WordKind, number>>): string {
  const worst = (name: string): number => Math.min(...WORD_KINDS.map((k) => rates[name]?.[k] ?? -1));
  return Object.keys(AGGREGATIONS).reduce((best, name) => (worst(name) > worst(best) ? name : best));
}

function markOf(report: PointingReport, name: string): string {
  const marks = [name === report.defaultAggregation && "the model's", name === report.bestAggregation && 'best'].filter(Boolean);
  return marks.length > 0 ? ` (${marks.join(', ')})` : '';
}

export function formatPointing(report: PointingReport): string {
  const lines = [
    `pointing game (${report.variant}, ${report.scenes} correct captions of ${report.scenesWithBoxes} scenes with 2-3 objects; words: ${WORD_KINDS.map((k) => `${k} ${report.words[k]}`).join(', ')})`,
    `| map | ${WORD_KINDS.join(' | ')} |`,
    `| --- | ${WORD_KINDS.map(() => '---').join(' | ')} |`,
    ...Object.entries(report.rates).map(([name, r]) => `| ${name}${markOf(report, name)} | ${WORD_KINDS.map((k) => `${r[k].toFixed(1)} %`).join(' | ')} |`),
  ];
  if (report.imageShare !== null) lines.push(`mean share of attention on the image: ${(100 * report.imageShare).toFixed(1)} %`);
  return lines.join('\n');
}
