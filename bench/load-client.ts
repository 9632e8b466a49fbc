// The load generator's client side: N concurrent clients, each sending its next request
// as soon as the previous one ends, over real HTTP. Iris is driven through its streaming
// subscriptions (SSE) so every token's arrival is timed; the transformers.js baseline
// through its NDJSON endpoint (bench/tjs-server.ts). Both over node:http with keep-alive
// connections: the client's own time is in every latency it measures, and with fetch
// (undici) a caption at one client took 0.9 ms longer (p50, 350 interleaved pairs against
// one Iris, 2026-12-02), the same for either server, which narrowed every ratio.
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { SpeculativeMode, Task } from '../src/contract/types.ts';
import { ROOT } from '../test/helpers.ts';

export interface LoadRequest {
  task: Task;
  image: Uint8Array;
  question?: string;
  /** The text to continue, for `generate`. */
  prompt?: string;
}

/** The generation options every request of a level shares. */
export interface LoadOptions {
  maxNewTokens: number;
  /** Forces this many tokens (e.g. fixed-length generations); 0 or absent: stop at EOS. */
  minNewTokens?: number;
  /** Iris only; absent: the server's default. */
  speculative?: SpeculativeMode;
}

export interface RequestTiming {
  ms: number;
  firstTokenMs: number;
  tokens: number;
  ok: boolean;
  error?: string;
}

export type Send = (request: LoadRequest, options: LoadOptions) => Promise<RequestTiming>;

const FIELDS: Record<Task, { variable: string; field: string }> = {
  caption: { variable: '', field: 'captionStream(image: $i, options: $o)' },
  answer: { variable: '$q: String!, ', field: 'answerStream(image: $i, question: $q, options: $o)' },
  generate: { variable: '$p: String!, ', field: 'generateStream(image: $i, prompt: $p, options: $o)' },
};

/** Iris over GraphQL SSE: one `next` event per decoded piece, then the final Generation. */
export function irisSender(url: string): Send {
  return failingSoftly(async (request, options) => {
    const { variable, field } = FIELDS[request.task];
    const query = `subscription($i: ImageInput!, ${variable}$o: GenerationOptions) { ${field} { delta done generation { usage { completionTokens } } } }`;
    const o = { maxNewTokens: options.maxNewTokens, ...(options.minNewTokens ? { minNewTokens: options.minNewTokens } : {}), ...(options.speculative ? { speculative: options.speculative.toUpperCase() } : {}) }; // a GraphQL enum
    const variables = { i: { base64: Buffer.from(request.image).toString('base64') }, o, q: request.question, p: request.prompt };
    const started = performance.now();
    const res = await post(url, JSON.stringify({ query, variables }), { 'content-type': 'application/json', accept: 'text/event-stream' });
    let firstTokenMs = NaN;
    let tokens = 0;
    let ok = false;
    let error: string | undefined;
    for await (const data of lines(res, '\n\n')) {
      const payload = /^data: (.*)$/m.exec(data)?.[1];
      if (!payload || !/^event: next$/m.test(data)) continue;
      const event = JSON.parse(payload) as { data?: Record<string, { done: boolean; generation?: { usage: { completionTokens: number } } }>; errors?: { message: string }[] };
      const body = event.data && Object.values(event.data)[0];
      if (!body) {
        error = event.errors?.[0]?.message; // e.g. OVERLOADED
        break;
      }
      if (Number.isNaN(firstTokenMs)) firstTokenMs = performance.now() - started;
      if (body.done) {
        tokens = body.generation?.usage.completionTokens ?? 0;
        ok = true;
      }
    }
    return { ms: performance.now() - started, firstTokenMs, tokens, ok, error };
  });
}

/** transformers.js baseline: one NDJSON line per generated token. */
export function tjsSender(url: string): Send {
  return failingSoftly(async (request, options) => {
    const body = JSON.stringify({
      task: request.task, question: request.question, prompt: request.prompt, image: Buffer.from(request.image).toString('base64'),
      maxNewTokens: options.maxNewTokens, minNewTokens: options.minNewTokens ?? 0,
    });
    const started = performance.now();
    const res = await post(url, body, { 'content-type': 'application/json' });
    let firstTokenMs = NaN;
    let tokens = 0;
    let ok = false;
    let error: string | undefined;
    for await (const line of lines(res, '\n')) {
      if (line === '{"t":1}') {
        if (tokens++ === 0) firstTokenMs = performance.now() - started;
      } else if (line.startsWith('{"done"')) ok = true;
      else if (line.startsWith('{"error"')) error = line;
    }
    return { ms: performance.now() - started, firstTokenMs, tokens, ok, error };
  });
}

/** A request whose connection fails counts as failed (its level reports it), not as the end of the run. */
function failingSoftly(send: Send): Send {
  return async (request, options) => {
    const started = performance.now();
    try {
      return await send(request, options);
    } catch (error) {
      return { ms: performance.now() - started, firstTokenMs: NaN, tokens: 0, ok: false, error: error instanceof Error ? error.message : String(error) };
    }
  };
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

/**
 * POST `body`; resolves with the response once its headers are in (its body is read by
 * iterating it). A kept-alive connection the server closed while it sat idle (Node's
 * servers close them after 5 s) resets the request sent on it: that request goes again
 * (3 times at most), as node:http's documentation advises.
 */
function post(url: string, body: string, headers: Record<string, string>, attempt = 1): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, resolve);
    req.once('error', (error: NodeJS.ErrnoException) => {
      if (req.reusedSocket && error.code === 'ECONNRESET' && attempt < 3) resolve(post(url, body, headers, attempt + 1));
      else reject(error);
    });
    req.end(body);
  });
}

async function* lines(res: IncomingMessage, separator: string): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf(separator)) >= 0) {
      yield buffer.slice(0, cut);
      buffer = buffer.slice(cut + separator.length);
    }
  }
  if (buffer.trim()) yield buffer;
}

export interface LevelResult {
  concurrency: number;
  requests: number;
  failed: number;
  /** The first failure's message, if any. */
  firstError?: string;
  seconds: number;
  requestsPerSecond: number;
  tokensPerSecond: number;
  latencyMs: { p50: number; p95: number };
  firstTokenMs: { p50: number; p95: number };
  perOutputTokenMs: { p50: number; p95: number };
  /** Generated tokens per successful request. */
  tokensPerRequest: number;
}

/** `concurrency` clients share `requests` requests (distinct images), each sending the next when its last ends. */
export async function runLevel(send: Send, concurrency: number, requests: readonly LoadRequest[], options: LoadOptions): Promise<LevelResult> {
  let next = 0;
  const timings: RequestTiming[] = [];
  const started = performance.now();
  const client = async (): Promise<void> => {
    while (next < requests.length) timings.push(await send(requests[next++], options));
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return levelOf(concurrency, timings, (performance.now() - started) / 1000);
}

/**
 * One client, one request at a time, the targets taking turns request by request (the
 * first of each turn rotating): each target's requests see the same moments of the
 * machine, so their latencies compare side by side however its speed drifts. `requests`
 * holds `perTarget` distinct requests for each target.
 */
export async function runAlternating(targets: readonly { send: Send; options: LoadOptions }[], requests: readonly LoadRequest[], perTarget: number): Promise<LevelResult[]> {
  const timings = targets.map((): RequestTiming[] => []);
  const spent = targets.map(() => 0);
  for (let i = 0; i < perTarget; i++) {
    for (let k = 0; k < targets.length; k++) {
      const j = (i + k) % targets.length;
      const started = performance.now();
      timings[j].push(await targets[j].send(requests[i * targets.length + j], targets[j].options));
      spent[j] += performance.now() - started;
    }
  }
  return targets.map((_, j) => levelOf(1, timings[j], spent[j] / 1000));
}

function levelOf(concurrency: number, timings: readonly RequestTiming[], seconds: number): LevelResult {
  const ok = timings.filter((t) => t.ok);
  const tpot = ok.filter((t) => t.tokens > 1).map((t) => (t.ms - t.firstTokenMs) / (t.tokens - 1));
  return {
    concurrency,
    requests: timings.length,
    failed: timings.length - ok.length,
    firstError: timings.find((t) => !t.ok)?.error,
    seconds,
    requestsPerSecond: ok.length / seconds,
    tokensPerSecond: ok.reduce((n, t) => n + t.tokens, 0) / seconds,
    latencyMs: percentiles(ok.map((t) => t.ms)),
    firstTokenMs: percentiles(ok.map((t) => t.firstTokenMs)),
    perOutputTokenMs: percentiles(tpot),
    tokensPerRequest: ok.reduce((n, t) => n + t.tokens, 0) / Math.max(1, ok.length),
  };
}

function percentiles(xs: number[]): { p50: number; p95: number } {
  const sorted = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const at = (q: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  return { p50: at(0.5), p95: at(0.95) };
}

/**
 * Distinct images for load: the sample scenes in turn, each request a copy with its own
 * 8-byte tail (a tag for this run, then a serial number): the same pixels, a new content
 * hash, so no request hits the embedding or result cache.
 */
export function distinctRequests(): (n: number, task?: 'caption' | 'generate') => LoadRequest[] {
  const samples = join(ROOT, 'assets/samples');
  const scenes = readdirSync(samples).filter((f) => f.endsWith('.png')).sort().map((f) => new Uint8Array(readFileSync(join(samples, f))));
  const runTag = Math.floor(Math.random() * 2 ** 31);
  let serial = 0;
  return (n, task = 'caption') =>
    Array.from({ length: n }, () => {
      const scene = scenes[serial % scenes.length];
      const image = new Uint8Array(scene.length + 8);
      image.set(scene);
      const tail = new DataView(image.buffer, scene.length);
      tail.setUint32(0, runTag, true);
      tail.setUint32(4, serial++, true);
      return task === 'generate' ? { task, image, prompt: 'a' } : { task, image };
    });
}
