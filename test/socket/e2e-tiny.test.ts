// The engine that serves `npm start`, on the tiny random-weights fixture, over a real socket: all
// three image inputs, all three tasks, and streaming over SSE and WebSocket agreeing with
// the non-streamed (greedy, so deterministic) result.
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createEngineConfig } from '../../src/config/config.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { createEngineLoader } from '../../src/server/load-models.ts';
import { scenePng } from '../api/support/images.ts';
import { readSse, startImageHost, startIris, type ImageHost, type RunningIris } from './support.ts';

const FIELDS = 'text finishReason model tokens { id text } usage { promptTokens imageTokens completionTokens } timings { imageCached totalMs }';
const OPTIONS = { maxNewTokens: 6 };

interface Generation {
  text: string;
  finishReason: string;
  model: string;
  tokens: Array<{ id: number; text: string }>;
  usage: { promptTokens: number; imageTokens: number; completionTokens: number };
  timings: { imageCached: boolean; totalMs: number };
}

describe('end to end on assets/models/tiny-random', () => {
  let iris: RunningIris;
  let host: ImageHost;
  let png: Buffer;
  const engines: Engine[] = [];

  beforeAll(async () => {
    png = await scenePng(64);
    host = await startImageHost({ '/scene.png': (_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(png) });
    iris = await startIris({
      load: createEngineLoader({ engine: createEngineConfig(), onEngine: (_, engine) => engines.push(engine) }),
      config: { models: { specs: [{ id: 'tiny', dir: 'assets/models/tiny-random' }] }, images: { url: { allow: ['127.0.0.1'] } } },
    });
  });
  afterAll(async () => {
    await iris.server.close();
    await Promise.all(engines.map((e) => e.release()));
    await host.close();
  });

  const post = async (query: string, variables: Record<string, unknown>) => {
    const res = await fetch(iris.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    return (await res.json()) as { data?: Record<string, Generation>; errors?: unknown[] };
  };

  it('reports the model ready', async () => {
    expect((await post('{ models { id ready tasks } }', {})).data).toEqual({ models: [{ id: 'tiny', ready: true, tasks: ['CAPTION', 'ANSWER', 'GENERATE'] }] });
  });

  it('captions a base64 image, then serves the same image from the embedding cache', async () => {
    const query = `query($i: ImageInput!, $o: GenerationOptions) { caption(image: $i, options: $o) { ${FIELDS} } }`;
    const first = await post(query, { i: { base64: png.toString('base64') }, o: OPTIONS });
    expect(first.errors).toBeUndefined();
    const caption = first.data?.caption as Generation;
    expect(caption.model).toBe('tiny');
    expect(caption.usage.completionTokens).toBe(caption.tokens.length);
    expect(caption.text.length).toBeGreaterThan(0);
    const second = (await post(query, { i: { base64: png.toString('base64') }, o: OPTIONS })).data?.caption as Generation;
    expect(second.text).toBe(caption.text);
    expect(second.timings.imageCached).toBe(true);
  });

  it('answers about an uploaded image', async () => {
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: `query($f: File!) { answer(image: { upload: $f }, question: "how many shapes are there?", options: { maxNewTokens: 3 }) { ${FIELDS} } }`, variables: { f: null } }));
    form.set('map', JSON.stringify({ 0: ['variables.f'] }));
    form.set('0', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'scene.png');
    const body = (await (await fetch(iris.url, { method: 'POST', headers: { 'graphql-require-preflight': '1' }, body: form })).json()) as { data: { answer: Generation } };
    expect(body.data.answer.model).toBe('tiny');
    expect(body.data.answer.usage.promptTokens).toBeGreaterThan(1);
  });

  it('continues a prompt about an image fetched by URL', async () => {
    const res = await post(`query($u: String!) { generate(image: { url: $u }, prompt: "a large", options: { maxNewTokens: 4 }) { ${FIELDS} } }`, { u: `${host.base}/scene.png` });
    expect(res.errors).toBeUndefined();
    expect(res.data?.generate.usage.completionTokens).toBeLessThanOrEqual(4);
  });

  it('reports errors of the core with their codes: PROMPT_TOO_LONG in tokens, BAD_IMAGE on a corrupt body', async () => {
    const long = await post('query($i: ImageInput!, $p: String!) { generate(image: $i, prompt: $p) { text } }', {
      i: { base64: png.toString('base64') },
      p: Array.from({ length: 80 }, () => 'large').join(' '), // 80 tokens, the model reads 64 positions
    });
    expect((long.errors as Array<{ extensions: { code: string } }>)[0].extensions.code).toBe('PROMPT_TOO_LONG');
    // A PNG whose header is intact (so the edge probe passes) but whose pixels are cut off.
    const truncated = png.subarray(0, Math.floor(png.length / 2)).toString('base64');
    const bad = await post('query($i: ImageInput!) { caption(image: $i) { text } }', { i: { base64: truncated } });
    expect((bad.errors as Array<{ extensions: { code: string } }>)[0].extensions.code).toBe('BAD_IMAGE');
  });

  it('streams the same text over SSE and WebSocket as the plain query', async () => {
    const variables = { i: { base64: png.toString('base64') }, o: OPTIONS };
    const plain = (await post('query($i: ImageInput!, $o: GenerationOptions) { caption(image: $i, options: $o) { text } }', variables)).data?.caption.text;
    const subscription = 'subscription($i: ImageInput!, $o: GenerationOptions) { captionStream(image: $i, options: $o) { delta done generation { text } } }';
    type Event = { data: { captionStream: { delta: string; done: boolean; generation: { text: string } | null } } };
    const sse = (await readSse(
      await fetch(iris.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify({ query: subscription, variables }) }),
    )) as Event[];
    const client = createClient({ url: iris.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    const ws: Event[] = [];
    for await (const e of client.iterate({ query: subscription, variables })) ws.push(e as Event);
    await client.dispose();
    for (const events of [sse, ws]) {
      expect(events.filter((e) => !e.data.captionStream.done).map((e) => e.data.captionStream.delta).join('')).toBe(plain);
      expect(events.at(-1)?.data.captionStream.generation?.text).toBe(plain);
    }
  });
});
