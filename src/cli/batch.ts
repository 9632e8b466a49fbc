// `iris batch`: JSON lines in, JSON lines out, in input order. A bad line becomes an error
// line with a stable code; the other lines still run, batched by the engine.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { IrisError, TASKS, finishReasonName, type GenerationOptions, type GenerationRequest, type GenerationResult, type Generator, type Task } from '../contract/types.ts';

export async function readImageFile(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new IrisError('IMAGE_FETCH_FAILED', `cannot read image ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

interface BatchLine {
  id: unknown;
  request: GenerationRequest | IrisError;
}

/** Lines in flight at once: the engine batches them; the bound keeps its line from overflowing. */
const WINDOW_LINES = 48;

/**
 * Returns the exit code: 0 when every line succeeded, 1 otherwise. Each line goes to the
 * generator as soon as it is read (the engine batches concurrent requests continuously);
 * results are written in input order.
 */
export async function runBatch(generator: Generator, input: Readable, writeLine: (line: string) => void): Promise<number> {
  let failures = 0;
  const outputs: Promise<string>[] = [];
  const run = async (pending: Promise<BatchLine>): Promise<string> => {
    const line = await pending;
    const outcome = line.request instanceof IrisError ? line.request : await generator.generate(line.request).catch(onlyIrisErrors);
    if (outcome instanceof IrisError) failures++;
    return JSON.stringify(formatOutcome(line.id, outcome));
  };
  const writeOldest = async (): Promise<void> => writeLine(await outputs.shift()!);
  let lineNumber = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    lineNumber++;
    if (!text.trim()) continue;
    outputs.push(run(parseLine(text, lineNumber)));
    while (outputs.length >= WINDOW_LINES) await writeOldest();
  }
  while (outputs.length > 0) await writeOldest();
  return failures > 0 ? 1 : 0;
}

/** An IrisError is this line's outcome; anything else is a bug and stops the command. */
function onlyIrisErrors(error: unknown): IrisError {
  if (error instanceof IrisError) return error;
  throw error;
}

function formatOutcome(id: unknown, outcome: GenerationResult | IrisError): Record<string, unknown> {
  if (outcome instanceof IrisError) return { id, error: { code: outcome.code, message: outcome.message } };
  const { text, tokens, finishReason, timings, usage, warnings, confidence } = outcome;
  return { id, text, tokens, finishReason: finishReasonName(finishReason), usage, timings, warnings, confidence };
}

async function parseLine(text: string, lineNumber: number): Promise<BatchLine> {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('not an object');
  } catch {
    return { id: null, request: new IrisError('INVALID_OPTIONS', `line ${lineNumber}: not a JSON object`) };
  }
  const id = raw.id ?? lineNumber;
  const fail = (message: string): BatchLine => ({ id, request: new IrisError('INVALID_OPTIONS', `line ${lineNumber}: ${message}`) });
  if (!TASKS.includes(raw.task as Task)) return fail(`task must be one of ${TASKS.join(', ')}`);
  if (typeof raw.image !== 'string') return fail('image must be a file path');
  if (raw.question !== undefined && typeof raw.question !== 'string') return fail('question must be a string');
  if (raw.prompt !== undefined && typeof raw.prompt !== 'string') return fail('prompt must be a string');
  if (raw.options !== undefined && (typeof raw.options !== 'object' || raw.options === null)) return fail('options must be an object');
  try {
    const image = await readImageFile(raw.image);
    const request: GenerationRequest = {
      task: raw.task as Task, image,
      question: raw.question as string | undefined,
      prompt: raw.prompt as string | undefined,
      options: raw.options as GenerationOptions | undefined,
    };
    return { id, request };
  } catch (err) {
    return { id, request: err as IrisError };
  }
}
