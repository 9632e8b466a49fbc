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

/** The spec's refusal caption (an out-of-domain image's caption). */
export const OOD_CAPTION = 'an image i cannot describe';

/** The spec's out-of-domain bars: ≥ 500 OOD images of which ≥ 100 photographs; ≥ 95 % on each measure. */
export const OOD_BARS = { images: 500, photos: 100, caption: 95, answer: 95, scenes_out_of_grammar: 95 } as const;

/** Each bar a variant's figures miss, in words; empty when they meet them all. */
export function oodBarsProblems(v: Pick<OodScores, 'images' | 'photos' | 'caption' | 'answer' | 'scenes_out_of_grammar'>): string[] {
  const problems: string[] = [];
  if (v.images < OOD_BARS.images) problems.push(`${v.images} OOD images < ${OOD_BARS.images}`);
  if (v.photos < OOD_BARS.photos) problems.push(`${v.photos} photographs < ${OOD_BARS.photos}`);
  const measures = [['caption', v.caption], ['answer', v.answer], ['scenes out-of-grammar', v.scenes_out_of_grammar]] as const;
  const bars = [OOD_BARS.caption, OOD_BARS.answer, OOD_BARS.scenes_out_of_grammar];
  measures.forEach(([name, value], i) => {
    if (value === null) problems.push(`${name} not measured`);
    else if (value < bars[i]) problems.push(`${name} ${value} < ${bars[i]}`);
  });
  return problems;
}

/** One kind of out-of-domain image: how many, and each measure in % (null: nothing measured). */
export interface OodKindScores {
  images: number;
  /** Captioned exactly `an image i cannot describe`. */
  caption: number | null;
  /** Six-form questions about them answered `unknown`. */
  answer: number | null;
  /** Out-of-grammar questions about them answered `unknown`. */
  out_of_grammar: number | null;
  /** Continuations that end at once (no token after the prefix). */
  continuation: number | null;
}

/** The out-of-domain figures of one image variant; the keys of training/evaluate.py's eval_ood_pytorch.json. */
export interface OodScores extends Omit<OodKindScores, 'images'> {
  /** Out-of-domain images, and how many of them are photographs. */
  images: number;
  photos: number;
  /** Six-form questions about them. */
  questions: number;
  by_kind: Record<string, OodKindScores>;
  /** Scenes with out-of-grammar questions, and how many of those questions were answered `unknown` (%). */
  scenes: number;
  scenes_out_of_grammar: number | null;
  scenes_out_of_grammar_questions: number;
  scenes_out_of_grammar_by_family: Record<string, number | null>;
  /** Scenes wrongly captioned `an image i cannot describe` (%). */
  scenes_refused: number | null;
  /** The spec's out-of-domain bars met on this variant. */
  meets_spec: boolean;
}

export interface EvalReport {
  model: string;
  folder: string;
  measuredWith: string;
  date: string;
  /** Which ONNX variant ran (fp32, q8, fp16); absent in reports from before variants existed. */
  dtype?: string;
  /** The in-domain table: scenes only (lines without a domain count as scenes). */
  variants: Record<string, VariantScores>;
  /** The out-of-domain table per image variant; absent when the folder has nothing out of domain. */
  ood?: Record<string, OodScores>;
  /** The spec's verdicts (null: not measured); absent in reports from before out-of-domain lines. */
  meetsSpec?: { inDomain: boolean; outOfDomain: boolean | null };
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
 * The spec's bars: caption ≥ 95, answer ≥ 95, every kind ≥ 90 on the reference variant
 * (the 128 px PNG); "the same figures, at most 1 point lower" on the others (the 64 and
 * 256 px JPEGs): ≥ 94, ≥ 94, ≥ 89. The summary also says how far each other variant falls
 * below the reference's own figures; that is reported, not judged (at 64 px, the JPEG's
 * 4:2:0 chroma subsampling alone costs the shipped model about 1.5 caption points).
 */
export function meetsSpec(report: EvalReport, reference = 'png128'): { isMet: boolean; summary: string } {
  const ref = report.variants[reference] ?? Object.values(report.variants)[0];
  const problems: string[] = [];
  const drops: string[] = [];
  for (const [name, v] of Object.entries(report.variants)) {
    const slack = v === ref ? 0 : 1;
    if (v.caption < 95 - slack) problems.push(`${name} caption ${v.caption} < ${95 - slack}`);
    if (v.answer < 95 - slack) problems.push(`${name} answer ${v.answer} < ${95 - slack}`);
    for (const [k, value] of Object.entries(v.by_kind)) if (value < 90 - slack) problems.push(`${name} ${k} ${value} < ${90 - slack}`);
    if (v !== ref) {
      const worst = [['caption', ref.caption - v.caption], ['answer', ref.answer - v.answer],
        ...Object.entries(v.by_kind).map(([k, value]) => [k, (ref.by_kind[k] ?? value) - value])] as [string, number][];
      const [what, drop] = worst.reduce((a, b) => (b[1] > a[1] ? b : a));
      drops.push(`${name} ${drop > 0 ? `${what} −${drop.toFixed(2)}` : 'none'}`);
    }
  }
  const isMet = problems.length === 0;
  const verdict = isMet ? 'spec quality bars: met' : `spec quality bars: NOT met (${problems.join('; ')})`;
  return { isMet, summary: drops.length ? `${verdict}\nlargest drop below ${reference}: ${drops.join('; ')}` : verdict };
}

const fixed = (value: number | null | undefined): string => (value === null || value === undefined ? '-' : value.toFixed(2));

/**
 * Markdown, one table per image variant: per kind of out-of-domain image (then all of
 * them) the images and, in %, captions exactly `an image i cannot describe`, six-form
 * questions answered `unknown`, out-of-grammar questions answered `unknown`, continuations
 * that end at once; a last row for the scenes' out-of-grammar questions; below it, those
 * by family and the scenes wrongly refused. Empty when the report has no out-of-domain part.
 */
export function formatOodTable(report: EvalReport): string {
  if (!report.ood) return '';
  const blocks: string[] = [];
  for (const [name, v] of Object.entries(report.ood)) {
    const header = ['kind', 'images', 'caption refused %', 'answer unknown %', 'out-of-grammar unknown %', 'continuation ends %'];
    const lines = [header, header.map(() => '---')];
    for (const [kind, k] of Object.entries(v.by_kind)) lines.push([kind, String(k.images), fixed(k.caption), fixed(k.answer), fixed(k.out_of_grammar), fixed(k.continuation)]);
    lines.push(['all out of domain', String(v.images), fixed(v.caption), fixed(v.answer), fixed(v.out_of_grammar), fixed(v.continuation)]);
    lines.push(['scenes (out-of-grammar questions)', String(v.scenes), '-', '-', fixed(v.scenes_out_of_grammar), '-']);
    const families = Object.entries(v.scenes_out_of_grammar_by_family).map(([f, value]) => `${f} ${fixed(value)}`).join(', ');
    blocks.push([
      `out of domain, ${name}: ${v.images} images (${v.photos} photographs), ${v.questions} questions about them; ` +
        `${v.scenes} scenes, ${v.scenes_out_of_grammar_questions} out-of-grammar questions about them`,
      lines.map((cells) => `| ${cells.join(' | ')} |`).join('\n'),
      `scenes' out-of-grammar questions answered \`unknown\` by family (%): ${families || '-'}; scenes captioned \`${OOD_CAPTION}\`: ${fixed(v.scenes_refused)} %`,
    ].join('\n\n'));
  }
  return blocks.join('\n\n');
}

/**
 * The spec's out-of-domain bars on every variant: ≥ 500 OOD images of which ≥ 100
 * photographs, ≥ 95 % exact refusal captions, ≥ 95 % `unknown` answers about them, ≥ 95 %
 * `unknown` answers to out-of-grammar questions about scenes (the bars training/evaluate.py
 * judges). The continuation figure is reported, not judged. isMet null: not measured.
 */
export function meetsOodSpec(report: EvalReport): { isMet: boolean | null; summary: string } {
  if (!report.ood || Object.keys(report.ood).length === 0) {
    return { isMet: null, summary: 'spec out-of-domain bars: not measured (the folder has no out-of-domain lines)' };
  }
  const variants = Object.entries(report.ood);
  const first = variants[0][1];
  const counts = oodBarsProblems({ ...first, caption: OOD_BARS.caption, answer: OOD_BARS.answer, scenes_out_of_grammar: OOD_BARS.scenes_out_of_grammar });
  const problems = [...counts, ...variants.flatMap(([name, v]) => oodBarsProblems({ ...v, images: OOD_BARS.images, photos: OOD_BARS.photos }).map((p) => `${name} ${p}`))];
  const isMet = problems.length === 0;
  return { isMet, summary: isMet ? 'spec out-of-domain bars: met' : `spec out-of-domain bars: NOT met (${problems.join('; ')})` };
}

/** Everything `iris eval` prints and puts in the model card: both tables and both verdicts. */
export function formatReport(report: EvalReport): string {
  const ood = formatOodTable(report);
  return [formatTable(report), meetsSpec(report).summary, ...(ood ? [ood] : []), meetsOodSpec(report).summary].join('\n\n');
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
