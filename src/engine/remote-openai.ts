// A Generator that runs on another server's OpenAI-compatible chat API (vLLM, SGLang,
// llama.cpp's server, Ollama, or another Iris): `--model big=openai+http://host:8000/v1#name`.
// Iris keeps what it does in front of any engine (GraphQL, image intake with its URL
// policy and limits, keys, rate limits, deadlines, streaming); the remote decodes.
//
//  - Tasks become one user message: the image as a data: URL (the bytes Iris already
//    fetched and checked), and the task's text from the entry's templates.
//  - Options map to the chat API's fields (vLLM's extra fields for top_k, min_p,
//    repetition_penalty, min_tokens); those no such server honours are refused with
//    INVALID_OPTIONS before anything is sent.
//  - Always streamed from the remote, so deltas reach Iris's own streams as they come and
//    an abort (client gone, deadline) aborts the fetch, which vLLM and Iris take as a
//    cancellation of the generation.
//  - Remote errors map to Iris's codes; the image's sha256 goes along as vLLM's `uuid`
//    (its multimodal cache key) and as routing-key headers for routers that hash on it.
import { createHash } from 'node:crypto';
import { IrisError, type FinishReason, type GeneratedToken, type GenerateHooks, type GenerationRequest, type GenerationResult, type Generator, type IrisErrorCode, type TokenLogprob } from '../contract/types.ts';
import { resolveOptions, type ResolvedOptions } from '../../text/sampling/options.ts';
import type { RemoteEndpoint } from '../config/remote-model.ts';

/** The remote's health, as the last probe of GET /models found it. */
export interface RemoteHealth {
  readonly isHealthy: boolean;
  readonly detail: string | undefined;
}

export interface RemoteGeneratorOptions {
  /** Reported as each result's `model` (the Iris model id). */
  readonly modelId: string;
  readonly endpoint: RemoteEndpoint;
  /** Replaces fetch (tests). */
  readonly fetch?: typeof fetch;
  /** How long a health probe may take. */
  readonly probeTimeoutMs?: number;
}

export class RemoteOpenAIGenerator implements Generator {
  readonly modelId: string;
  private readonly fetch: typeof fetch;
  private inFlight = 0;
  private health: RemoteHealth = { isHealthy: false, detail: 'not probed yet' };

  constructor(private readonly options: RemoteGeneratorOptions) {
    this.modelId = options.modelId;
    this.fetch = options.fetch ?? fetch;
  }

  get endpoint(): RemoteEndpoint {
    return this.options.endpoint;
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  currentHealth(): RemoteHealth {
    return this.health;
  }

  /** GET {base}/models: healthy when it answers 200 and lists the model (and, for an Iris remote, says it is ready). */
  async probe(): Promise<RemoteHealth> {
    const { baseUrl, model } = this.options.endpoint;
    try {
      const response = await this.fetch(`${baseUrl}/models`, { headers: this.headers(), signal: AbortSignal.timeout(this.options.probeTimeoutMs ?? 2_000) });
      if (!response.ok) {
        await response.body?.cancel();
        this.health = { isHealthy: false, detail: `remote GET /models answered ${response.status}` };
      } else {
        const body = (await response.json()) as { data?: { id?: string; ready?: boolean }[] };
        const listed = body.data?.find((m) => m.id === model);
        this.health = !listed
          ? { isHealthy: false, detail: `the remote does not serve "${model}" (it lists ${(body.data ?? []).map((m) => m.id).join(', ') || 'nothing'})` }
          : listed.ready === false
            ? { isHealthy: false, detail: `the remote's "${model}" is not ready` }
            : { isHealthy: true, detail: undefined };
      }
    } catch (error) {
      this.health = { isHealthy: false, detail: `remote unreachable: ${(error as Error).message}` };
    }
    return this.health;
  }

  async generate(request: GenerationRequest, hooks: GenerateHooks = {}): Promise<GenerationResult> {
    const { signal } = hooks;
    if (signal?.aborted) throw cancelledError();
    const options = resolveOptions(request.options);
    const body = this.requestBody(request, options);
    const started = performance.now();
    this.inFlight++;
    try {
      const response = await this.send(body, imageHash(request.image), signal);
      return await this.readStream(response, options, started, hooks);
    } finally {
      this.inFlight--;
    }
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const { apiKey } = this.options.endpoint;
    return { ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}), ...extra };
  }

  private requestBody(request: GenerationRequest, options: ResolvedOptions): Record<string, unknown> {
    refuseUnmappable(request, options);
    const { endpoint } = this.options;
    const template = endpoint.templates[request.task];
    if (template === undefined) throw new IrisError('INVALID_OPTIONS', `model "${this.modelId}" has no ${request.task} template`);
    const text = template.replace('{question}', request.question ?? '').replace('{prompt}', request.prompt ?? '');
    const image: Record<string, unknown> = { type: 'image_url', image_url: { url: dataUrl(request.image) } };
    if (endpoint.sendUuid) image.uuid = imageHash(request.image);
    const content = text.trim() === '' ? [image] : [image, { type: 'text', text }];
    const body: Record<string, unknown> = {
      model: endpoint.model,
      messages: [{ role: 'user', content }],
      // Both names: max_tokens for servers that predate max_completion_tokens.
      max_completion_tokens: options.maxNewTokens,
      max_tokens: options.maxNewTokens,
      // Iris is greedy unless asked to sample; OpenAI-style servers default to temperature 1.
      temperature: options.isSampling ? options.temperature : 0,
      stream: true,
      stream_options: { include_usage: true },
    };
    if (options.isSampling && options.topP < 1) body.top_p = options.topP;
    if (options.isSampling && options.topK > 0) body.top_k = options.topK;
    if (options.isSampling && options.minP > 0) body.min_p = options.minP;
    if (options.repetitionPenalty !== 1) body.repetition_penalty = options.repetitionPenalty;
    if (options.minNewTokens > 0) body.min_tokens = options.minNewTokens;
    if (request.options?.seed !== undefined) body.seed = options.seed;
    if (options.stop.length > 0) body.stop = options.stop;
    if (options.logprobs) {
      body.logprobs = true;
      if (options.topLogprobs > 0) body.top_logprobs = options.topLogprobs;
    }
    return body;
  }

  private async send(body: Record<string, unknown>, hash: string, signal: AbortSignal | undefined): Promise<Response> {
    const headers = this.headers({ 'content-type': 'application/json', accept: 'text/event-stream', 'x-iris-image-key': hash, 'x-smg-routing-key': hash });
    let response: Response;
    try {
      response = await this.fetch(`${this.options.endpoint.baseUrl}/chat/completions`, { method: 'POST', headers, body: JSON.stringify(body), signal });
    } catch (error) {
      if (signal?.aborted) throw cancelledError();
      throw new IrisError('MODEL_UNAVAILABLE', `model "${this.modelId}": the remote could not be reached (${(error as Error).message})`);
    }
    if (!response.ok) throw await remoteError(response, this.modelId);
    return response;
  }

  private async readStream(response: Response, options: ResolvedOptions, started: number, hooks: GenerateHooks): Promise<GenerationResult> {
    const tokens: GeneratedToken[] = [];
    let text = '';
    let firstAt = 0;
    let finish: FinishReason | undefined;
    let usage = { promptTokens: 0, imageTokens: 0, completionTokens: 0 };
    const push = (piece: string, logprob: RemoteLogprob | undefined): void => {
      firstAt ||= performance.now();
      const token: GeneratedToken = { id: -1, text: piece, ...(logprob ? logprobFields(logprob, options.topLogprobs) : {}) };
      tokens.push(token);
      text += piece;
      hooks.onDelta?.({ text: piece, token });
    };
    try {
      for await (const event of sseEvents(response.body!)) {
        if (event === '[DONE]') break;
        const chunk = JSON.parse(event) as RemoteChunk;
        if (chunk.error) throw mapRemoteCode(chunk.error, 500, this.modelId);
        if (chunk.usage) usage = { promptTokens: chunk.usage.prompt_tokens ?? 0, imageTokens: 0, completionTokens: chunk.usage.completion_tokens ?? 0 };
        for (const choice of chunk.choices ?? []) {
          const piece = choice.delta?.content ?? '';
          const logprobs = choice.logprobs?.content ?? [];
          if (logprobs.length > 1) logprobs.forEach((lp) => push(lp.token, lp));
          else if (piece !== '') push(piece, logprobs[0]);
          if (choice.finish_reason) finish = finishOf(choice.finish_reason, choice.iris_finish_reason);
        }
      }
    } catch (error) {
      if (hooks.signal?.aborted) {
        if (tokens.length === 0) throw cancelledError();
        finish = 'cancelled';
      } else if (error instanceof IrisError) {
        throw error;
      } else {
        throw new IrisError('MODEL_UNAVAILABLE', `model "${this.modelId}": the remote's stream broke off (${(error as Error).message})`);
      }
    }
    if (finish === undefined) {
      if (hooks.signal?.aborted) {
        if (tokens.length === 0) throw cancelledError();
        finish = 'cancelled';
      } else throw new IrisError('MODEL_UNAVAILABLE', `model "${this.modelId}": the remote's stream ended without a finish reason`);
    }
    const now = performance.now();
    const firstMs = firstAt ? firstAt - started : now - started;
    const logprobs = tokens.flatMap((t) => (t.logprob === undefined ? [] : [t.logprob]));
    const mean = logprobs.length > 0 && logprobs.length === tokens.length ? logprobs.reduce((a, b) => a + b, 0) / logprobs.length : null;
    return {
      text,
      tokens,
      finishReason: finish,
      usage: { ...usage, completionTokens: usage.completionTokens || tokens.length },
      // The remote encodes the image and keeps its own caches: whether they hit is not known here.
      timings: { queueMs: 0, imageEncodeMs: 0, imageCached: null, prefixCached: null, prefillMs: firstMs, decodeMs: now - started - firstMs, totalMs: now - started },
      model: this.modelId,
      warnings: [],
      confidence: { tokens: tokens.length, meanLogprob: mean, minLogprob: mean === null ? null : Math.min(...logprobs), perplexity: mean === null ? null : Math.exp(-mean) },
    };
  }
}

interface RemoteLogprob {
  token: string;
  logprob: number;
  top_logprobs?: { token: string; logprob: number }[];
}

interface RemoteChunk {
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null; iris_finish_reason?: string; logprobs?: { content?: RemoteLogprob[] | null } | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string; code?: string | number | null; type?: string };
}

function logprobFields(lp: RemoteLogprob, topLogprobs: number): Pick<GeneratedToken, 'logprob' | 'top'> {
  const top: TokenLogprob[] | undefined = topLogprobs > 0 ? (lp.top_logprobs ?? []).slice(0, topLogprobs).map((t) => ({ id: -1, text: t.token, logprob: t.logprob })) : undefined;
  return { logprob: lp.logprob, ...(top ? { top } : {}) };
}

/** OpenAI's "stop" covers both the end of sequence and a stop string; an Iris remote says which. */
function finishOf(reason: string, irisReason: string | undefined): FinishReason {
  const iris = irisReason?.toLowerCase();
  if (iris === 'eos' || iris === 'stop' || iris === 'length' || iris === 'cancelled') return iris;
  if (reason === 'length') return 'length';
  if (reason === 'abort') return 'cancelled';
  return 'eos';
}

/** Options no OpenAI-compatible server takes, refused before anything is sent. */
function refuseUnmappable(request: GenerationRequest, options: ResolvedOptions): void {
  if (options.attention) throw new IrisError('ATTENTION_UNAVAILABLE', 'a remote model gives no attention maps');
  if (options.noRepeatNgramSize > 0) throw new IrisError('INVALID_OPTIONS', 'noRepeatNgramSize is not available on a remote (OpenAI-compatible) model; use repetitionPenalty');
  if (options.speculative !== undefined && options.speculative !== 'off') throw new IrisError('INVALID_OPTIONS', `speculative '${options.speculative}' is not available on a remote model: speculative decoding is the remote engine's own setting`);
  if (request.task === 'answer' && !request.question) throw new IrisError('INVALID_OPTIONS', 'answer needs a question');
}

function imageHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The image's media type from its first bytes (Iris's intake has checked it is an image). */
export function mediaTypeOf(bytes: Uint8Array): string {
  const ascii = (from: number, to: number): string => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes[0] === 0x89 && ascii(1, 4) === 'PNG') return 'image/png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg';
  if (ascii(0, 4) === 'GIF8') return 'image/gif';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'image/webp';
  if (ascii(4, 8) === 'ftyp') return 'image/avif';
  if (ascii(0, 2) === 'II' || ascii(0, 2) === 'MM') return 'image/tiff';
  return 'application/octet-stream';
}

function dataUrl(bytes: Uint8Array): string {
  return `data:${mediaTypeOf(bytes)};base64,${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}`;
}

function cancelledError(): IrisError {
  return new IrisError('CANCELLED', 'the request was cancelled before the remote produced text');
}

const IRIS_CODES = new Set<string>(['BAD_IMAGE', 'UNSUPPORTED_IMAGE_FORMAT', 'IMAGE_TOO_LARGE', 'IMAGE_FETCH_FAILED', 'URL_NOT_ALLOWED', 'INVALID_OPTIONS', 'PROMPT_TOO_LONG', 'OVERLOADED', 'TIMEOUT']);

/**
 * A remote's error as an Iris code: the remote's own code when it is one of Iris's that
 * means the same here (an Iris remote), else by HTTP status. Refusals that are Iris's
 * configuration's fault (auth, unknown model) and the remote's failures are
 * MODEL_UNAVAILABLE: the client can do nothing about them.
 */
function mapRemoteCode(error: { message?: string; code?: string | number | null; type?: string }, status: number, modelId: string, retryAfterSeconds?: number): IrisError {
  const message = `model "${modelId}": the remote answered ${status}: ${error.message ?? 'no message'}`;
  const code = typeof error.code === 'string' ? error.code : undefined;
  if (code && IRIS_CODES.has(code)) return new IrisError(code as IrisErrorCode, message, { retryAfterSeconds });
  let mapped: IrisErrorCode = 'MODEL_UNAVAILABLE';
  if (status === 400 || status === 422) mapped = /image/i.test(error.message ?? '') ? 'BAD_IMAGE' : 'INVALID_OPTIONS';
  else if (status === 413) mapped = 'IMAGE_TOO_LARGE';
  else if (status === 429 || status === 503) mapped = 'OVERLOADED';
  else if (status === 408 || status === 504) mapped = 'TIMEOUT';
  return new IrisError(mapped, message, { retryAfterSeconds: mapped === 'OVERLOADED' ? (retryAfterSeconds ?? 1) : undefined });
}

async function remoteError(response: Response, modelId: string): Promise<IrisError> {
  const raw = await response.text().catch(() => '');
  let error: { message?: string; code?: string | number | null; type?: string } = { message: raw.slice(0, 200) || response.statusText };
  try {
    const parsed = JSON.parse(raw) as { error?: typeof error; message?: string };
    if (parsed.error && typeof parsed.error === 'object') error = parsed.error;
    else if (typeof parsed.message === 'string') error = { message: parsed.message }; // vLLM's ErrorResponse before 0.9: top-level fields
  } catch {
    // not JSON: keep the text
  }
  const retryAfter = Number(response.headers.get('retry-after'));
  return mapRemoteCode(error, response.status, modelId, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined);
}

/** The `data:` payloads of a server-sent event stream, one per event (multi-line data joined by \n). */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
        if (line === '') {
          if (data.length > 0) yield data.join('\n');
          data = [];
        } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        // event:, id:, retry: and comments (": ping") carry nothing Iris needs.
      }
      if (done) break;
    }
    if (data.length > 0) yield data.join('\n');
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
