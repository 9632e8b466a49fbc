// Task prompts from the folder's own conventions (config.json task_specific_params):
// the decoder input is [decoder_start_token_id] + tokens(template filled in).
import { IrisError, TASKS, type GenerationRequest, type Task } from '../src/contract/types.ts';

/** Template per task; a missing task is one this model was not trained for. */
export type TaskTemplates = Readonly<Partial<Record<Task, string>>>;

/** A stock captioner (e.g. vit-gpt2) has no task_specific_params: caption only, and a prompt is a plain prefix. */
const DEFAULT_TEMPLATES: TaskTemplates = Object.freeze({ caption: '', generate: '{prompt}' });

export function parseTaskTemplates(params: unknown): TaskTemplates {
  if (typeof params !== 'object' || params === null) return DEFAULT_TEMPLATES;
  const out: Partial<Record<Task, string>> = {};
  for (const task of TASKS) {
    const entry = (params as Record<string, unknown>)[task];
    const template = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>).template : undefined;
    if (typeof template === 'string') out[task] = template;
  }
  return Object.freeze(Object.keys(out).length > 0 ? out : DEFAULT_TEMPLATES);
}

/** The tasks a model has a template for, in TASKS order. */
export function tasksOf(templates: TaskTemplates): Task[] {
  return TASKS.filter((task) => templates[task] !== undefined);
}

export interface PromptTokenizer {
  encode(text: string): Int32Array;
}

/** The words the caller wrote: the question (answer), the prompt (generate), nothing (caption). */
export function userTextOf(request: Pick<GenerationRequest, 'task' | 'question' | 'prompt'>): string {
  return request.task === 'answer' ? request.question ?? '' : request.task === 'generate' ? request.prompt ?? '' : '';
}

/** The template text with the request's question or prompt filled in. */
export function promptText(request: Pick<GenerationRequest, 'task' | 'question' | 'prompt'>, templates: TaskTemplates, specialTokens: readonly string[]): string {
  const template = templates[request.task];
  if (template === undefined) {
    const supported = tasksOf(templates).join(', ');
    throw new IrisError('INVALID_OPTIONS', `this model does not support task '${request.task}' (supported: ${supported})`);
  }
  if (request.task === 'answer' && !request.question?.trim()) throw new IrisError('INVALID_OPTIONS', "task 'answer' needs a non-empty question");
  const userText = userTextOf(request);
  // The tokenizer matches special tokens anywhere, so user text could otherwise forge them.
  const forged = specialTokens.find((t) => userText.includes(t));
  if (forged) throw new IrisError('INVALID_OPTIONS', `${request.task === 'answer' ? 'question' : 'prompt'} must not contain the special token '${forged}'`);
  return template.replaceAll('{question}', userText.trim()).replaceAll('{prompt}', userText.trim());
}

/** [decoder start] + tokens of the filled template. */
export function buildPromptIds(text: string, tokenizer: PromptTokenizer, decoderStartId: number): Int32Array {
  const body = tokenizer.encode(text);
  const ids = new Int32Array(body.length + 1);
  ids[0] = decoderStartId;
  ids.set(body, 1);
  return ids;
}
