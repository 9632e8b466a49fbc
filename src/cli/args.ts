// Command-line flags → typed settings. Number flags are passed through as numbers (NaN
// for junk) so resolveOptions reports the allowed range in one place.
import { parseArgs } from 'node:util';
import type { GenerationOptions, SpeculativeMode } from '../contract/types.ts';

export interface CliSettings {
  command: string | undefined;
  positionals: string[];
  modelDir: string | undefined;
  isJson: boolean;
  /** eval: also write the report (JSON) here. */
  outFile: string | undefined;
  /** eval: write eval.json (eval.<dtype>.json) into the model folder and the tables into its card. */
  isModelUpdated: boolean;
  isStreaming: boolean;
  threads: number | undefined;
  /** Raw --dtype: fp32|q8|fp16 for running, q8|fp16|all for `quantize`; checked by the command. */
  dtype: string | undefined;
  options: GenerationOptions;
  /** --attention: caption/ask/generate write overlays into this folder; eval plays the pointing game ('' when given bare). */
  attention: string | undefined;
  isHelp: boolean;
}

const FLAGS = {
  model: { type: 'string' },
  json: { type: 'boolean' },
  out: { type: 'string' },
  'update-model': { type: 'boolean' },
  stream: { type: 'boolean' },
  threads: { type: 'string' },
  dtype: { type: 'string' },
  'max-new-tokens': { type: 'string' },
  'min-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  'no-repeat-ngram-size': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  logprobs: { type: 'boolean' },
  'top-logprobs': { type: 'string' },
  speculative: { type: 'string' },
  attention: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const USAGE = `usage: iris <command> [flags]

commands:
  caption <image...>          caption each image
  ask <image> "<question>"    answer a question about the image
  generate <image> "<prompt>" continue a prompt grounded in the image
  batch                       JSON lines on stdin → JSON lines on stdout
  eval <dir>                  quality table on a labelled folder's scenes, and its out-of-domain table
                              (per kind of OOD image) when it has OOD lines; --out FILE writes the report;
                              --update-model writes eval.json into the model folder and the tables into
                              its card (eval.<dtype>.json for --dtype q8/fp16, leaving the card alone)
  quantize [<model-dir>]      write onnx/*_quantized.onnx (int8) and *_fp16.onnx next to each model file

flags:
  --model DIR                 model folder (default: the shipped assets/models/shapes-base)
  --dtype D                   weights to load: fp32 (default), q8 (*_quantized.onnx), fp16 (*_fp16.onnx);
                              for quantize: q8, fp16 or all (default)
  --json                      print full results as JSON lines
  --stream                    print text as it is generated
  --max-new-tokens N  --min-new-tokens N  --temperature T  --top-k K  --top-p P  --min-p P
  --repetition-penalty R  --no-repeat-ngram-size N  --seed S  --stop STR (repeatable)
  --logprobs  --top-logprobs N  --threads N
  --attention OUTDIR           caption/ask/generate: one overlay PNG per token (where the model looked)
                              and a contact sheet of them all, in OUTDIR; eval --attention: the
                              pointing game (do the maps point at the object each word describes?)
  --speculative off|draft|ngram  speculative decoding (draft: the model's draft/ folder; ngram: prompt
                              lookup); same greedy output, same sampling distribution`;

export function parseCli(argv: string[]): CliSettings {
  // `--attention` takes a folder for caption/ask/generate and none for eval: a bare one gets an empty value.
  const args = argv.map((a, i) => (a === '--attention' && (i === argv.length - 1 || argv[i + 1].startsWith('--')) ? '--attention=' : a));
  const { values, positionals } = parseFlags(args);
  const num = (v: string | undefined, flag?: string): number | undefined => {
    if (v === undefined) return undefined;
    if (v.trim() === '' || !Number.isFinite(Number(v))) throw new UsageError(`${flag ? `--${flag}` : 'a number flag'} takes a number, got "${v}"`);
    return Number(v);
  };
  const options: GenerationOptions = {
    maxNewTokens: num(values['max-new-tokens'], 'max-new-tokens'),
    minNewTokens: num(values['min-new-tokens'], 'min-new-tokens'),
    temperature: num(values.temperature, 'temperature'),
    topK: num(values['top-k'], 'top-k'),
    topP: num(values['top-p'], 'top-p'),
    minP: num(values['min-p'], 'min-p'),
    repetitionPenalty: num(values['repetition-penalty'], 'repetition-penalty'),
    noRepeatNgramSize: num(values['no-repeat-ngram-size'], 'no-repeat-ngram-size'),
    seed: num(values.seed, 'seed'),
    stop: values.stop,
    logprobs: values.logprobs,
    topLogprobs: num(values['top-logprobs'], 'top-logprobs'),
    speculative: values.speculative as SpeculativeMode | undefined, // checked by resolveOptions
  };
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as GenerationOptions;
  return {
    command: positionals[0],
    positionals: positionals.slice(1),
    modelDir: values.model,
    isJson: values.json ?? false,
    outFile: values.out,
    isModelUpdated: values['update-model'] ?? false,
    isStreaming: values.stream ?? false,
    threads: num(values.threads, 'threads'),
    dtype: values.dtype,
    options: values.attention === undefined ? defined : { ...defined, attention: true },
    attention: values.attention,
    isHelp: values.help ?? false,
  };
}

/** A command line that names no command, or a command with the wrong arguments (exit status 2). */
export class UsageError extends Error {}

function parseFlags(args: string[]): ReturnType<typeof parseArgs<{ args: string[]; options: typeof FLAGS; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args, options: FLAGS, allowPositionals: true, strict: true });
  } catch (error) {
    const flag = /Unknown option '(--?[^']+)'/.exec((error as Error).message)?.[1];
    if (!flag) throw error;
    const suggestion = closestFlag(flag.replace(/^-+/, ''));
    throw new UsageError(`unknown flag ${flag}${suggestion ? `; did you mean --${suggestion}?` : ''}`);
  }
}

/** The known flag nearest to a mistyped one (edit distance at most 3), if any. */
export function closestFlag(typed: string): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const name of Object.keys(FLAGS)) {
    const d = editDistance(typed, name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}
