// Where a remote model lives: `--model big=openai+http://host:8000/v1#remote-name`, an
// OpenAI-compatible chat API (vLLM, SGLang, llama.cpp's server, Ollama, another Iris) that
// src/engine/remote-openai.ts generates through. Parsed here so the config can check an
// entry when it is read, before anything starts.
import type { Task } from '../contract/types.ts';

/** `openai+http(s)://host[:port]/base#remote-model[&caption=…][&answer=…][&generate=…][&uuid=0]`. */
export const REMOTE_SCHEME = 'openai+';

export type RemoteTemplates = Readonly<Partial<Record<Task, string>>>;

export interface RemoteEndpoint {
  /** The API base, e.g. http://host:8000/v1 (no trailing slash). */
  readonly baseUrl: string;
  /** The model name the remote serves (the `model` field of each request). */
  readonly model: string;
  /** Each task's message text: {question} and {prompt} are filled in; '' sends the image alone. */
  readonly templates: RemoteTemplates;
  /** Send the image hash as `uuid` on the image part (vLLM's cache key); other servers may refuse unknown fields. */
  readonly sendUuid: boolean;
  /** A bearer key for the remote, from the URL's password (http://:key@host/v1). */
  readonly apiKey: string | undefined;
}

export const DEFAULT_REMOTE_TEMPLATES: RemoteTemplates = {
  caption: 'Describe the image in one short caption.',
  answer: '{question}',
  generate: '{prompt}',
};

export function isRemoteDir(dir: string): boolean {
  return dir.startsWith(REMOTE_SCHEME);
}

/** Parses a remote model entry's location; throws RangeError naming what is wrong (config.ts words it as a ConfigError). */
export function parseRemoteEndpoint(dir: string): RemoteEndpoint {
  if (!isRemoteDir(dir)) throw new RangeError(`a remote model is ${REMOTE_SCHEME}http(s)://host/v1#model, got ${dir}`);
  let url: URL;
  try {
    url = new URL(dir.slice(REMOTE_SCHEME.length));
  } catch {
    throw new RangeError(`not a URL after ${REMOTE_SCHEME}: ${dir}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RangeError(`a remote model's URL must be http or https, got ${url.protocol}`);
  const [name, ...rest] = url.hash.slice(1).split('&');
  const model = decodeURIComponent(name ?? '');
  if (model === '') throw new RangeError(`a remote model entry names the remote's model after #, e.g. ${REMOTE_SCHEME}http://host:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct`);
  const params = new URLSearchParams(rest.join('&'));
  const templates: Record<string, string> = { ...DEFAULT_REMOTE_TEMPLATES };
  for (const [key, value] of params) {
    if (key === 'caption' || key === 'answer' || key === 'generate') templates[key] = value;
    else if (key !== 'uuid') throw new RangeError(`unknown remote model parameter "${key}": use caption, answer, generate (templates) or uuid=0`);
  }
  if (templates.answer !== undefined && !templates.answer.includes('{question}')) throw new RangeError('the answer template must contain {question}');
  if (templates.generate !== undefined && !templates.generate.includes('{prompt}')) throw new RangeError('the generate template must contain {prompt}');
  const apiKey = url.password ? decodeURIComponent(url.password) : undefined;
  url.username = '';
  url.password = '';
  url.hash = '';
  return { baseUrl: url.href.replace(/\/+$/, ''), model, templates, sendUuid: params.get('uuid') !== '0', apiKey };
}

