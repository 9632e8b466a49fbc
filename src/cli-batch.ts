// `iris batch`: JSON lines in, JSON lines out, in input order. A bad line becomes an error
// line with a stable code; the other lines still run, decoded together in chunks.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Pipeline } from './pipeline.ts';
import { IrisError, type GenerationOptions, type GenerationRequest, type GenerationResult, type Task } from './types.ts';

const CHUNK_LINES = 32;

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

/** Returns the exit code: 0 when every line succeeded, 1 otherwise. */
export async function runBatch(pipeline: Pipeline, input: Readable, writeLine: (line: string) => void): Promise<number> {
  let failures = 0;
  let pending: Promise<BatchLine>[] = [];
  const flush = async (): Promise<void> => {
    const lines = await Promise.all(pending);
    pending = [];
    const requests = lines.filter((l): l is BatchLine & { request: GenerationRequest } => !(l.request instanceof IrisError));
    const results = await pipeline.generateBatch(requests.map((l) => l.request));
    for (const line of lines) {
      const i = requests.indexOf(line as BatchLine & { request: GenerationRequest });
      const outcome = line.request instanceof IrisError ? line.request : results[i];
      if (outcome instanceof IrisError) failures++;
      writeLine(JSON.stringify(formatOutcome(line.id, outcome)));
    }
  };
  let lineNumber = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    lineNumber++;
    if (!text.trim()) continue;
    pending.push(parseLine(text, lineNumber));
    if (pending.length >= CHUNK_LINES) await flush();
  }
  if (pending.length > 0) await flush();
  return failures > 0 ? 1 : 0;
}

function formatOutcome(id: unknown, outcome: GenerationResult | IrisError): Record<string, unknown> {
  if (outcome instanceof IrisError) return { id, error: { code: outcome.code, message: outcome.message } };
  const { text, tokens, finishReason, timings, usage } = outcome;
  return { id, text, tokens, finishReason, usage, timings };
}

const TASKS: readonly Task[] = ['caption', 'answer', 'generate'];

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
