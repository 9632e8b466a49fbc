// A request as a decoder row: checked, its prompt built from the model's task template,
// its options resolved and capped to the model's positions. Throws IrisError before any
// image work is done.
import { IrisError, TASKS, type GenerationRequest, type GenerationWarning, type Task } from '../contract/types.ts';
import { buildPromptIds, promptText, userTextOf } from '../../fusion/prompts.ts';
import { resolveOptions, type ResolvedOptions } from '../../text/sampling/options.ts';
import type { IrisModel } from '../model/load.ts';
import type { TextTokenizer } from '../../text/tokenizer.ts';
import type { RowSpec } from './row-decoder.ts';

export function rowSpecOf(model: IrisModel, request: GenerationRequest): RowSpec {
  if (!(TASKS as readonly string[]).includes(request.task)) throw new IrisError('INVALID_OPTIONS', `task must be one of ${TASKS.join(', ')}; got ${JSON.stringify(request.task as Task)}`);
  if (!(request.image instanceof Uint8Array)) throw new IrisError('BAD_IMAGE', 'image must be bytes (Uint8Array)');
  const resolved = resolveOptions(request.options);
  const text = promptText(request, model.folder.templates, model.specialTokens);
  const { family, ids } = model.folder;
  const promptIds = buildPromptIds(text, model.tokenizer, family.kind === 'joint' ? family : { decoderStartId: ids.decoderStart });
  // A continuation's text joins its prompt: decoded after it, it starts with the space a new word takes.
  return { promptIds, textContext: request.task === 'generate' ? promptIds : undefined, options: capToPositions(resolved, promptIds.length, model.folder.maxPositions), warnings: requestWarnings(model.tokenizer, request) };
}

/** UNKNOWN_WORDS when the question or prompt has words the model's vocabulary lacks (it reads each as `<unk>`). */
export function requestWarnings(tokenizer: Pick<TextTokenizer, 'unknownWords'>, request: Pick<GenerationRequest, 'task' | 'question' | 'prompt'>): GenerationWarning[] {
  const words = tokenizer.unknownWords(userTextOf(request));
  if (words.length === 0) return [];
  const what = request.task === 'answer' ? 'question' : 'prompt';
  const list = words.map((w) => JSON.stringify(w)).join(', ');
  const message = `${words.length === 1 ? 'a word' : `${words.length} words`} of the ${what} not in the model's vocabulary, read as <unk>: ${list}`;
  return [{ code: 'UNKNOWN_WORDS', message, words }];
}

/** prompt + generated must fit the decoder's position embeddings. */
export function capToPositions(options: ResolvedOptions, promptLength: number, maxPositions: number | undefined): ResolvedOptions {
  if (maxPositions === undefined) return options;
  const room = maxPositions - promptLength;
  if (room < 1) throw new IrisError('PROMPT_TOO_LONG', `the prompt is ${promptLength} tokens; this model reads at most ${maxPositions} positions, leaving no room to generate`);
  const maxNewTokens = Math.min(options.maxNewTokens, room);
  return Object.freeze({ ...options, maxNewTokens, minNewTokens: Math.min(options.minNewTokens, maxNewTokens) });
}
