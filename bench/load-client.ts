// The load generator's client side: N concurrent clients, each sending its next request
// as soon as the previous one ends, over real HTTP. Iris is driven through its streaming
// subscriptions (SSE) so every token's arrival is timed; the transformers.js baseline
// through its NDJSON endpoint (bench/tjs-server.ts).
import type { Task } from '../src/contract/types.ts';

export interface LoadRequest {
  task: Task;
  image: Uint8Array;
  question?: string;
}

export interface RequestTiming {
  ms: number;
  firstTokenMs: number;
  tokens: number;
  ok: boolean;
}

export type Send = (request: LoadRequest, maxNewTokens: number) => Promise<RequestTiming>;

/** Iris over GraphQL SSE: one `next` event per decoded piece, then the final Generation. */
export function irisSender(url: string): Send {
  return async (request, maxNewTokens) => {
    const isAnswer = request.task === 'answer';
    const field = isAnswer ? 'answerStream(image: $i, question: $q, options: $o)' : 'captionStream(image: $i, options: $o)';
    const query = `subscription($i: ImageInput!, ${isAnswer ? '$q: String!, ' : ''}$o: GenerationOptions) { ${field} { delta done generation { usage { completionTokens } } } }`;
    const variables = { i: { base64: Buffer.from(request.image).toString('base64') }, o: { maxNewTokens }, ...(isAnswer ? { q: request.question } : {}) };
    const started = performance.now();
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify({ query, variables }) });
    let firstTokenMs = NaN;
    let tokens = 0;
    let ok = false;
    for await (const data of lines(res, '\n\n')) {
      const payload = /^data: (.*)$/m.exec(data)?.[1];
      if (!payload || !/^event: next$/m.test(data)) continue;
      const event = JSON.parse(payload) as { data?: Record<string, { done: boolean; generation?: { usage: { completionTokens: number } } }> };
      const body = event.data && Object.values(event.data)[0];
      if (!body) break; // an error (e.g. OVERLOADED)
      if (Number.isNaN(firstTokenMs)) firstTokenMs = performance.now() - started;
      if (body.done) {
        tokens = body.generation?.usage.completionTokens ?? 0;
        ok = true;
      }
    }
    return { ms: performance.now() - started, firstTokenMs, tokens, ok };
  };
}

/** transformers.js baseline: one NDJSON line per generated token. */
export function tjsSender(url: string): Send {
  return async (request, maxNewTokens) => {
    const body = JSON.stringify({ task: request.task, question: request.question, image: Buffer.from(request.image).toString('base64'), maxNewTokens });
    const started = performance.now();
    const res = await fetch(url, { method: 'POST', body });
    let firstTokenMs = NaN;
    let tokens = 0;
    let ok = false;
    for await (const line of lines(res, '\n')) {
      if (line === '{"t":1}') {
        if (tokens++ === 0) firstTokenMs = performance.now() - started;
      } else if (line.startsWith('{"done"')) ok = true;
    }
    return { ms: performance.now() - started, firstTokenMs, tokens, ok };
  };
}

async function* lines(res: Response, separator: string): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
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
  seconds: number;
  requestsPerSecond: number;
  tokensPerSecond: number;
  latencyMs: { p50: number; p95: number };
  firstTokenMs: { p50: number; p95: number };
  perOutputTokenMs: { p50: number; p95: number };
}

/** `concurrency` clients share `requests` requests (distinct images), each sending the next when its last ends. */
export async function runLevel(send: Send, concurrency: number, requests: readonly LoadRequest[], maxNewTokens: number): Promise<LevelResult> {
  let next = 0;
  const timings: RequestTiming[] = [];
  const started = performance.now();
  const client = async (): Promise<void> => {
    while (next < requests.length) timings.push(await send(requests[next++], maxNewTokens));
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const seconds = (performance.now() - started) / 1000;
  const ok = timings.filter((t) => t.ok);
  const tpot = ok.filter((t) => t.tokens > 1).map((t) => (t.ms - t.firstTokenMs) / (t.tokens - 1));
  return {
    concurrency,
    requests: timings.length,
    failed: timings.length - ok.length,
    seconds,
    requestsPerSecond: ok.length / seconds,
    tokensPerSecond: ok.reduce((n, t) => n + t.tokens, 0) / seconds,
    latencyMs: percentiles(ok.map((t) => t.ms)),
    firstTokenMs: percentiles(ok.map((t) => t.firstTokenMs)),
    perOutputTokenMs: percentiles(tpot),
  };
}

function percentiles(xs: number[]): { p50: number; p95: number } {
  const sorted = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const at = (q: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  return { p50: at(0.5), p95: at(0.95) };
}
