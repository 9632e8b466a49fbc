// The eval report's shape (same keys as training/evaluate.py) and its rendering.
import { readFile, writeFile } from 'node:fs/promises';

export interface VariantScores {
  scenes: number;
  caption: number;
  answer: number;
  questions: number;
  continuation: number;
  by_kind: Record<string, number>;
}

export interface EvalReport {
  model: string;
  folder: string;
  measuredWith: string;
  date: string;
  /** Which ONNX variant ran (fp32, q8, fp16); absent in reports from before variants existed. */
  dtype?: string;
  variants: Record<string, VariantScores>;
}

/** Markdown table: one row per image variant, exact-match percentages. */
export function formatTable(report: EvalReport): string {
  const variants = Object.entries(report.variants);
  const kinds = [...new Set(variants.flatMap(([, v]) => Object.keys(v.by_kind)))].sort();
  const header = ['variant', 'scenes', 'caption %', 'answer %', ...kinds.map((k) => `${k} %`), 'continuation %'];
  const lines = [header, header.map(() => '---')];
  for (const [name, v] of variants) {
    lines.push([name, String(v.scenes), v.caption.toFixed(2), v.answer.toFixed(2), ...kinds.map((k) => v.by_kind[k]?.toFixed(2) ?? '-'), v.continuation.toFixed(2)]);
  }
  return lines.map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/**
 * The spec's bars: caption ≥ 95, answer ≥ 95, every kind ≥ 90 on the reference variant;
 * the other variants may be at most 1 point lower, both than those bars and than the
 * reference variant's own figures.
 */
export function meetsSpec(report: EvalReport, reference = 'png128'): { isMet: boolean; summary: string } {
  const ref = report.variants[reference] ?? Object.values(report.variants)[0];
  const problems: string[] = [];
  const check = (name: string, v: VariantScores, cap: number, ans: number, kind: (k: string) => number): void => {
    if (v.caption < cap) problems.push(`${name} caption ${v.caption} < ${cap}`);
    if (v.answer < ans) problems.push(`${name} answer ${v.answer} < ${ans}`);
    for (const [k, value] of Object.entries(v.by_kind)) if (value < kind(k)) problems.push(`${name} ${k} ${value} < ${kind(k)}`);
  };
  for (const [name, v] of Object.entries(report.variants)) {
    const slack = v === ref ? 0 : 1;
    check(name, v, 95 - slack, 95 - slack, () => 90 - slack);
    if (v !== ref) check(name, v, ref.caption - 1, ref.answer - 1, (k) => (ref.by_kind[k] ?? 0) - 1);
  }
  const isMet = problems.length === 0;
  return { isMet, summary: isMet ? 'spec quality bars: met' : `spec quality bars: NOT met (${problems.join('; ')})` };
}

const START = '<!-- eval:start -->';
const END = '<!-- eval:end -->';

/** Replace the text between the eval markers of a model card; false when there are none. */
export async function updateModelCard(path: string, body: string): Promise<boolean> {
  let card: string;
  try {
    card = await readFile(path, 'utf8');
  } catch {
    return false;
  }
  const start = card.indexOf(START);
  const end = card.indexOf(END);
  if (start < 0 || end < start) return false;
  await writeFile(path, `${card.slice(0, start + START.length)}\n${body}\n${card.slice(end)}`);
  return true;
}
