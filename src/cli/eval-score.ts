// What `iris eval` asks of each line of a labelled folder, and how each answer counts:
// scenes ("domain": "in", or no domain) feed the in-domain quality table; out-of-domain
// images ("domain": "ood") and the scenes' out-of-grammar questions feed the
// out-of-domain table (the spec's "Out of domain"; the same measures as
// training/evaluate.py ood_table). Pure bookkeeping: the caller runs the requests.
import type { GenerationRequest, GenerationResult } from '../contract/types.ts';
import { OOD_CAPTION, oodBarsProblems, type OodKindScores, type OodScores, type VariantScores } from './eval-report.ts';
/** training/ood.py KINDS: the order the out-of-domain table lists kinds in (others follow, sorted). */
export const OOD_KINDS = ['photo', 'text', 'noise', 'gradient', 'empty', 'many_objects', 'overlapping', 'other_shapes', 'background'] as const;

export interface LabelQuestion {
  kind: string;
  question: string;
  answer: string;
  /** Out-of-grammar questions: which way they leave the six forms (scrambled, wrong_form, ...). */
  family?: string;
}

/** One line of labels.jsonl (training/data.py write_folder); fields this command does not read are left out. */
export interface LabelRow {
  id: number;
  /** "in" (a scene; also when absent, as in folders written before out-of-domain lines existed) or "ood". */
  domain?: string;
  /** Out-of-domain lines: the kind of image (photo, text, noise, ...). */
  kind?: string;
  images: Record<string, string>;
  caption: string;
  questions: LabelQuestion[];
  continuation: { prefix: string; caption: string };
  out_of_grammar?: LabelQuestion[];
}

export const isInDomain = (row: LabelRow): boolean => (row.domain ?? 'in') === 'in';
export const isOutOfDomain = (row: LabelRow): boolean => row.domain === 'ood';

/** What a check reads of a result. */
export type Scored = Pick<GenerationResult, 'text' | 'tokens'>;

/** One request a line asks for (its image and options added by the caller), and how its result counts. */
export interface Job {
  readonly request: Pick<GenerationRequest, 'task' | 'question' | 'prompt'>;
  score(result: Scored): void;
}

/** Glue a prefix and its completion the way the caption is written ("a , b" → "a, b"). */
export function joinContinuation(prefix: string, completion: string): string {
  return `${prefix} ${completion}`.replace(/\s+/g, ' ').replace(/ ([,?])/g, '$1').trim();
}

type Tally = [ok: number, total: number];
type OodMeasure = 'caption' | 'answer' | 'out_of_grammar' | 'continuation';
const OOD_MEASURES: readonly OodMeasure[] = ['caption', 'answer', 'out_of_grammar', 'continuation'];

function add(map: Map<string, Tally>, key: string, ok: boolean): void {
  const tally = map.get(key) ?? [0, 0];
  map.set(key, [tally[0] + Number(ok), tally[1] + 1]);
}

/** Percent with 2 decimals; 0 of 0 is 0 (the in-domain table's convention). */
export function pct(ok: number, total: number): number {
  return total === 0 ? 0 : Math.round((10000 * ok) / total) / 100;
}

/** Percent with 2 decimals; null when nothing was measured (evaluate.py writes NaN). */
function pctOrNull([ok, total]: Tally): number | null {
  return total === 0 ? null : pct(ok, total);
}

function sum(tallies: Iterable<Tally>): Tally {
  let ok = 0;
  let total = 0;
  for (const [a, b] of tallies) {
    ok += a;
    total += b;
  }
  return [ok, total];
}

function kindOrder(a: string, b: string): number {
  const rank = (k: string): number => {
    const i = (OOD_KINDS as readonly string[]).indexOf(k);
    return i < 0 ? OOD_KINDS.length : i;
  };
  return rank(a) - rank(b) || a.localeCompare(b);
}

/** The counts of one image variant, filled in as results come back. */
export class VariantTally {
  private numScenes = 0;
  private captions = 0;
  private continuations = 0;
  private readonly kinds = new Map<string, Tally>();
  private numOod = 0;
  private numPhotos = 0;
  private readonly oodKinds = new Map<string, Map<string, Tally>>();
  private readonly families = new Map<string, Tally>();
  private numOogScenes = 0;
  private refused = 0;

  /** `outOfDomain` false: out-of-domain lines and the scenes' out-of-grammar questions are skipped. */
  constructor(private readonly measuresOod = true) {}

  /** The requests of one line, with their checks; nothing for a line of another domain (or an OOD line when skipped). */
  jobs(row: LabelRow): Job[] {
    if (isInDomain(row)) return this.sceneJobs(row);
    if (isOutOfDomain(row) && this.measuresOod) return this.oodJobs(row);
    return [];
  }

  private sceneJobs(row: LabelRow): Job[] {
    this.numScenes++;
    const oog = this.measuresOod ? row.out_of_grammar ?? [] : [];
    if (oog.length > 0) this.numOogScenes++;
    const jobs: Job[] = [
      {
        request: { task: 'caption' },
        score: ({ text }) => {
          this.captions += Number(text.trim() === row.caption);
          if (oog.length > 0) this.refused += Number(text.trim() === OOD_CAPTION);
        },
      },
      {
        request: { task: 'generate', prompt: row.continuation.prefix },
        score: ({ text }) => void (this.continuations += Number(joinContinuation(row.continuation.prefix, text) === row.continuation.caption)),
      },
      ...row.questions.map((q): Job => ({ request: { task: 'answer', question: q.question }, score: ({ text }) => add(this.kinds, q.kind, text.trim() === q.answer) })),
      ...oog.map((q): Job => ({ request: { task: 'answer', question: q.question }, score: ({ text }) => add(this.families, q.family ?? q.kind, text.trim() === q.answer) })),
    ];
    return jobs;
  }

  private oodJobs(row: LabelRow): Job[] {
    const kind = row.kind ?? 'other';
    this.numOod++;
    if (kind === 'photo') this.numPhotos++;
    const tallies = this.oodKinds.get(kind) ?? new Map<string, Tally>();
    this.oodKinds.set(kind, tallies);
    return [
      { request: { task: 'caption' }, score: ({ text }) => add(tallies, 'caption', text.trim() === OOD_CAPTION) },
      // "ends at once": the end of sequence is the first token after the prefix (evaluate.py: no token generated).
      { request: { task: 'generate', prompt: row.continuation.prefix }, score: ({ tokens }) => add(tallies, 'continuation', tokens.length === 0) },
      ...row.questions.map((q): Job => ({ request: { task: 'answer', question: q.question }, score: ({ text }) => add(tallies, 'answer', text.trim() === q.answer) })),
      ...(row.out_of_grammar ?? []).map((q): Job => ({ request: { task: 'answer', question: q.question }, score: ({ text }) => add(tallies, 'out_of_grammar', text.trim() === q.answer) })),
    ];
  }

  /** The in-domain figures: scenes only. */
  inDomain(): VariantScores {
    const kinds = [...this.kinds.entries()].sort(([a], [b]) => a.localeCompare(b));
    const [okAnswers, numQuestions] = sum(kinds.map(([, t]) => t));
    return {
      scenes: this.numScenes,
      caption: pct(this.captions, this.numScenes),
      answer: pct(okAnswers, numQuestions),
      questions: numQuestions,
      continuation: pct(this.continuations, this.numScenes),
      by_kind: Object.fromEntries(kinds.map(([kind, [ok, n]]) => [kind, pct(ok, n)])),
    };
  }

  /** True when there is something out of domain to report (OOD lines, or scenes with out-of-grammar questions). */
  get hasOutOfDomain(): boolean {
    return this.numOod > 0 || this.numOogScenes > 0;
  }

  /** The out-of-domain figures, keys as evaluate.py's eval_ood_pytorch.json. */
  outOfDomain(): OodScores {
    const kinds = [...this.oodKinds.entries()].sort(([a], [b]) => kindOrder(a, b));
    const total = (measure: OodMeasure): Tally => sum(kinds.map(([, t]) => t.get(measure) ?? [0, 0]));
    const byKind = (t: Map<string, Tally>): OodKindScores => ({
      images: (t.get('caption') ?? [0, 0])[1],
      ...(Object.fromEntries(OOD_MEASURES.map((m) => [m, pctOrNull(t.get(m) ?? [0, 0])])) as Record<OodMeasure, number | null>),
    });
    const families = [...this.families.entries()].sort(([a], [b]) => a.localeCompare(b));
    const oogScenes = sum(families.map(([, t]) => t));
    const scores: Omit<OodScores, 'meets_spec'> = {
      images: this.numOod,
      photos: this.numPhotos,
      ...(Object.fromEntries(OOD_MEASURES.map((m) => [m, pctOrNull(total(m))])) as Record<OodMeasure, number | null>),
      questions: total('answer')[1],
      by_kind: Object.fromEntries(kinds.map(([kind, t]) => [kind, byKind(t)])),
      scenes: this.numOogScenes,
      scenes_out_of_grammar: pctOrNull(oogScenes),
      scenes_out_of_grammar_questions: oogScenes[1],
      scenes_out_of_grammar_by_family: Object.fromEntries(families.map(([f, t]) => [f, pctOrNull(t)])),
      scenes_refused: pctOrNull([this.refused, this.numOogScenes]),
    };
    return { ...scores, meets_spec: oodBarsProblems(scores).length === 0 };
  }
}
