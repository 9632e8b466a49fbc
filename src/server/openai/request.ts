// The body of POST /v1/chat/completions, read into what Iris needs: the image, the text of
// the last user message, and generation options under Iris's names. OpenAI fields Iris
// cannot honour are refused with a message naming them, never silently ignored.
import { IrisError, type GenerationOptions } from '../../contract/types.ts';
import { resolveOptions } from '../../../text/sampling/options.ts';
import type { ImageInput } from '../intake/intake.ts';
import { OpenAIRequestError } from './errors.ts';

export interface ChatRequest {
  /** Undefined: the server's default model. */
  readonly model: string | undefined;
  readonly image: ImageInput;
  /** The text parts of the last user message, joined by a space and trimmed. */
  readonly text: string;
  readonly options: GenerationOptions;
  readonly stream: boolean;
  readonly includeUsage: boolean;
}

type Json = Record<string, unknown>;

const invalid = (message: string, param: string | null): never => {
  throw new OpenAIRequestError('INVALID_OPTIONS', message, param);
};

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** OpenAI name → Iris option; the extra (non-OpenAI) fields follow vLLM's names. */
const OPTION_FIELDS: ReadonlyArray<readonly [string, keyof GenerationOptions]> = [
  ['max_completion_tokens', 'maxNewTokens'],
  ['max_tokens', 'maxNewTokens'],
  ['min_tokens', 'minNewTokens'],
  ['temperature', 'temperature'],
  ['top_p', 'topP'],
  ['top_k', 'topK'],
  ['min_p', 'minP'],
  ['repetition_penalty', 'repetitionPenalty'],
  ['no_repeat_ngram_size', 'noRepeatNgramSize'],
  ['seed', 'seed'],
  ['stop', 'stop'],
  ['logprobs', 'logprobs'],
  ['top_logprobs', 'topLogprobs'],
  ['speculative', 'speculative'],
];

/** Fields whose only value Iris can honour is their default. */
function refuseUnsupported(body: Json): void {
  if (body.n !== undefined && body.n !== null && body.n !== 1) invalid(`n must be 1: Iris returns one choice per request (got ${JSON.stringify(body.n)}); send several requests, with different seeds, for several choices`, 'n');
  for (const name of ['frequency_penalty', 'presence_penalty']) {
    const value = body[name];
    if (value !== undefined && value !== null && value !== 0) invalid(`${name} is not supported; use repetition_penalty (> 1 penalises repeated tokens) or no_repeat_ngram_size`, name);
  }
  for (const name of ['tools', 'functions', 'audio']) {
    if (body[name] !== undefined && body[name] !== null) invalid(`${name} is not supported by Iris's models`, name);
  }
  const format = body.response_format;
  if (isObject(format) && format.type !== 'text') invalid(`response_format ${JSON.stringify(format.type)} is not supported; only text`, 'response_format');
}

function readOptions(body: Json): GenerationOptions {
  const options: Record<string, unknown> = {};
  const fieldOf = new Map<string, string>(); // option → the field that set it, for messages
  for (const [field, option] of OPTION_FIELDS) {
    const value = body[field];
    if (value === undefined || value === null || options[option] !== undefined) continue;
    options[option] = field === 'stop' && typeof value === 'string' ? [value] : value;
    fieldOf.set(option, field);
  }
  // OpenAI clients often send top_p 1, which means "off" there; in Iris setting it would turn sampling on.
  if (options.topP === 1) delete options.topP;
  try {
    resolveOptions(options as GenerationOptions);
  } catch (error) {
    if (!(error instanceof IrisError)) throw error;
    const field = fieldOf.get(/^\w+/.exec(error.message)?.[0] ?? '') ?? null;
    throw new OpenAIRequestError('INVALID_OPTIONS', field ? error.message.replace(/^\w+/, field) : error.message, field);
  }
  return options as GenerationOptions;
}

interface Part {
  readonly text?: string;
  readonly imageUrl?: string;
}

function readPart(part: unknown, param: string): Part {
  if (!isObject(part)) return invalid('a content part must be an object with a type', param);
  if (part.type === 'text' && typeof part.text === 'string') return { text: part.text };
  if (part.type === 'image_url') {
    const ref = part.image_url;
    const url = isObject(ref) ? ref.url : ref;
    if (typeof url !== 'string' || url === '') invalid('an image_url part needs image_url.url: an http(s) URL or a data: URL', `${param}.image_url`);
    return { imageUrl: url as string };
  }
  return invalid(`content parts of type ${JSON.stringify(part.type)} are not supported; use text and image_url`, `${param}.type`);
}

function readParts(message: Json, param: string): Part[] {
  const { content } = message;
  if (typeof content === 'string') return [{ text: content }];
  if (Array.isArray(content)) return content.map((part, i) => readPart(part, `${param}.content[${i}]`));
  if (content === null || content === undefined) return [];
  return invalid('content must be a string or a list of parts', `${param}.content`);
}

/** The last user message's text, and the image it carries or else the latest one before it. */
function readMessages(messages: unknown): { text: string; image: ImageInput } {
  if (!Array.isArray(messages) || messages.length === 0) return invalid('messages must be a non-empty list', 'messages');
  const users = messages.flatMap((m, i) => (isObject(m) && m.role === 'user' ? [{ parts: readParts(m, `messages[${i}]`), param: `messages[${i}]` }] : []));
  const last = users.at(-1);
  if (!last) return invalid('messages must include a user message', 'messages');
  const images = last.parts.flatMap((p) => (p.imageUrl ? [p.imageUrl] : []));
  if (images.length > 1) invalid(`one image per request: the last user message has ${images.length}`, `${last.param}.content`);
  const url = images[0] ?? users.flatMap((u) => u.parts.flatMap((p) => (p.imageUrl ? [p.imageUrl] : []))).at(-1);
  if (url === undefined) invalid('Iris models need an image: add an image_url part to the user message', 'messages');
  const text = last.parts.flatMap((p) => (p.text !== undefined ? [p.text] : [])).join(' ').trim();
  return { text, image: (url as string).startsWith('data:') ? { base64: url } : { url } };
}

export function readChatRequest(body: unknown): ChatRequest {
  if (!isObject(body)) return invalid('the request body must be a JSON object', null);
  if (body.model !== undefined && body.model !== null && typeof body.model !== 'string') invalid('model must be a string', 'model');
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') invalid('stream must be true or false', 'stream');
  refuseUnsupported(body);
  const { text, image } = readMessages(body.messages);
  const streamOptions = isObject(body.stream_options) ? body.stream_options : {};
  return {
    model: typeof body.model === 'string' && body.model !== '' ? body.model : undefined,
    image,
    text,
    options: readOptions(body),
    stream: body.stream === true,
    includeUsage: streamOptions.include_usage === true,
  };
}
