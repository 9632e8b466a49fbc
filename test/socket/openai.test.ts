// The OpenAI-compatible API through the official `openai` npm client, pointed at a real
// Iris on 127.0.0.1: the engine on the tiny fixture (its text is random, so these tests
// check the protocol and agreement between paths), streaming and not, every option, and
// the error cases as the client sees them.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngineConfig } from '../../src/config/config.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { createEngineLoader } from '../../src/server/load-models.ts';
import { scenePng, tinyBmp } from '../api/support/images.ts';
import { socketWritesDuring, startImageHost, startIris, type ImageHost, type RunningIris } from './support.ts';

type Content = OpenAI.Chat.Completions.ChatCompletionContentPart[];

describe('OpenAI API on assets/models/tiny-random, through the openai client', () => {
  let iris: RunningIris;
  let host: ImageHost;
  let client: OpenAI;
  let dataUrl: string;
  const engines: Engine[] = [];

  beforeAll(async () => {
    const png = await scenePng(64);
    dataUrl = `data:image/png;base64,${png.toString('base64')}`;
    host = await startImageHost({ '/scene.png': (_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(png) });
    iris = await startIris({
      load: createEngineLoader({ engine: createEngineConfig(), onEngine: (_, engine) => engines.push(engine) }),
      config: {
        models: { specs: [{ id: 'tiny', dir: 'assets/models/tiny-random' }] },
        images: { url: { allow: ['127.0.0.1'] } },
        limits: { promptChars: 100 },
      },
    });
    client = new OpenAI({ baseURL: iris.url.replace('/graphql', '/v1'), apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await iris.server.close();
    await Promise.all(engines.map((e) => e.release()));
    await host.close();
  });

  const image = (url = dataUrl): Content[number] => ({ type: 'image_url', image_url: { url } });
  const ask = (content: Content, extra: Partial<OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming> = {}) =>
    client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content }], max_tokens: 6, ...extra });

  it('lists the model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => [m.id, m.object, m.owned_by])).toEqual([['tiny', 'model', 'iris']]);
    expect((await client.models.retrieve('tiny')).id).toBe('tiny');
  });

  it('captions a data URL image: one choice, usage counting the image tokens, max_tokens honoured', async () => {
    const completion = await ask([image()]);
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.model).toBe('tiny');
    expect(completion.choices).toHaveLength(1);
    const [choice] = completion.choices;
    expect(choice.message.role).toBe('assistant');
    expect(typeof choice.message.content).toBe('string');
    expect(['stop', 'length']).toContain(choice.finish_reason);
    // Iris's own reason, spelled as GraphQL and the CLI spell it.
    expect((choice as unknown as { iris_finish_reason: string }).iris_finish_reason).toBe(choice.finish_reason === 'length' ? 'LENGTH' : 'EOS');
    expect(completion.usage!.completion_tokens).toBeGreaterThan(0);
    expect(completion.usage!.completion_tokens).toBeLessThanOrEqual(6);
    expect(completion.usage!.prompt_tokens).toBeGreaterThan(1); // the image's tokens count
    expect(completion.usage!.total_tokens).toBe(completion.usage!.prompt_tokens + completion.usage!.completion_tokens);
  });

  it('takes max_completion_tokens too (it wins over max_tokens)', async () => {
    const completion = await ask([image(), { type: 'text', text: 'a small' }], { max_tokens: 6, max_completion_tokens: 1, min_tokens: 1 } as object);
    expect(completion.usage!.completion_tokens).toBe(1);
    expect(completion.choices[0].finish_reason).toBe('length');
  });

  it('fetches an http image_url through the same intake (allow-listed host)', async () => {
    const byUrl = await ask([image(`${host.base}/scene.png`)]);
    const byData = await ask([image()]);
    expect(byUrl.choices[0].message.content).toBe(byData.choices[0].message.content);
  });

  it('streams the same greedy text in chunks (pieces decoded within the stream interval merged), with usage last when asked', async () => {
    const whole = await ask([image(), { type: 'text', text: 'what is it?' }]);
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: [image(), { type: 'text', text: 'what is it?' }] }],
      max_tokens: 6,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(whole.choices[0].message.content);
    const contentChunks = chunks.filter((c) => (c.choices[0]?.delta.content ?? '') !== '');
    // The first piece goes out alone; later ones may share a chunk (--stream-interval-ms).
    expect(contentChunks.length).toBeGreaterThanOrEqual(Math.min(2, whole.usage!.completion_tokens));
    expect(contentChunks.length).toBeLessThanOrEqual(whole.usage!.completion_tokens);
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish.map((c) => c.choices[0].finish_reason)).toEqual([whole.choices[0].finish_reason]);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(whole.usage);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it('ends the raw stream with data: [DONE] and sends no usage unless asked', async () => {
    const res = await fetch(`${iris.url.replace('/graphql', '/v1')}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', stream: true, max_tokens: 3, messages: [{ role: 'user', content: [image()] }] }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await res.text()).trim().split('\n\n');
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(events.slice(0, -1).every((e) => e.startsWith('data: {') && !('usage' in JSON.parse(e.slice(6))))).toBe(true);
  });

  it('streams with the headers in the first chunk\'s write, and the last chunks and the end in one write', async () => {
    const writes = await socketWritesDuring(iris.server.http, async () => {
      const res = await fetch(`${iris.url.replace('/graphql', '/v1')}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', stream: true, max_tokens: 6, messages: [{ role: 'user', content: [image()] }] }),
      });
      expect((await res.text()).trim().endsWith('data: [DONE]')).toBe(true);
    });
    expect(writes[0]).toMatch(/^HTTP\/1\.1 200/);
    expect(writes[0]).toContain('"role":"assistant"');
    expect(writes[0]).toContain('"content":"'); // the first piece, not only the role's empty chunk
    const last = writes.at(-1)!;
    expect(last).toContain('"finish_reason"');
    expect(last).toMatch(/data: \[DONE\]\n\n\r\n0\r\n\r\n$/);
  });

  it('returns logprobs and top_logprobs per token, streamed and not', async () => {
    const completion = await ask([image()], { logprobs: true, top_logprobs: 3 });
    const content = completion.choices[0].logprobs!.content!;
    expect(content).toHaveLength(completion.usage!.completion_tokens);
    for (const entry of content) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(3);
      expect(entry.top_logprobs[0].logprob).toBeGreaterThanOrEqual(entry.logprob - 1e-6); // greedy picks the top
    }
    const stream = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: [image()] }], max_tokens: 6, stream: true, logprobs: true, top_logprobs: 3 });
    const streamed: number[] = [];
    for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []).map((e) => e.logprob));
    expect(streamed).toEqual(content.map((e) => e.logprob));
    expect((await ask([image()])).choices[0].logprobs).toBeNull();
  });

  it('samples reproducibly by seed, with temperature, top_p, stop and Iris extras', async () => {
    const params = { temperature: 1.5, top_p: 0.95, top_k: 40, min_p: 0.01, repetition_penalty: 1.1, seed: 7, max_tokens: 8, speculative: 'ngram' } as object;
    const a = await ask([image()], params);
    const b = await ask([image()], params);
    const c = await ask([image()], { ...params, seed: 8 } as object);
    expect(a.choices[0].message.content).toBe(b.choices[0].message.content);
    const texts = new Set([a, c].map((x) => x.choices[0].message.content));
    expect(texts.size).toBe(2); // a different seed draws differently (random weights: near-uniform tokens)
    const piece = a.choices[0].message.content!.split(/\s+/).find((w) => w.length > 0)!;
    const stopped = await ask([image()], { ...params, stop: piece } as object);
    expect(stopped.choices[0].message.content).not.toContain(piece);
    expect(stopped.choices[0].finish_reason).toBe('stop');
  });

  const failure = async (run: () => Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> => {
    const error = await run().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    return error as InstanceType<typeof OpenAI.APIError>;
  };

  it('answers a bad image with 400 BAD_IMAGE, streaming or not', async () => {
    const bad = `data:image/png;base64,${Buffer.from('not an image').toString('base64')}`;
    for (const stream of [false, true]) {
      const error = await failure(() => client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: [image(bad)] }], stream }));
      expect(error.status).toBe(400);
      expect(error.code).toBe('BAD_IMAGE');
      expect(error.type).toBe('invalid_request_error');
    }
    const bmp = await failure(() => ask([image(`data:image/bmp;base64,${tinyBmp().toString('base64')}`)]));
    expect([bmp.status, bmp.code]).toEqual([400, 'UNSUPPORTED_IMAGE_FORMAT']);
  });

  it('refuses n=2 with a clear error naming n', async () => {
    const error = await failure(() => ask([image()], { n: 2 }));
    expect([error.status, error.code, error.param]).toEqual([400, 'INVALID_OPTIONS', 'n']);
    expect(error.message).toMatch(/n must be 1/);
  });

  it('answers an unknown model with 404 MODEL_NOT_FOUND', async () => {
    const error = await failure(() => client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: [image()] }] }));
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect([error.code, error.param]).toEqual(['MODEL_NOT_FOUND', 'model']);
    expect(error.message).toMatch(/tiny/);
  });

  it('answers a too-long prompt with 400 PROMPT_TOO_LONG', async () => {
    const error = await failure(() => ask([image(), { type: 'text', text: 'a '.repeat(80) }]));
    expect([error.status, error.code]).toEqual([400, 'PROMPT_TOO_LONG']);
  });

  it('names the OpenAI field of an option out of range', async () => {
    const error = await failure(() => ask([image()], { max_tokens: 0 }));
    expect([error.status, error.code, error.param]).toEqual([400, 'INVALID_OPTIONS', 'max_tokens']);
    expect(error.message).toMatch(/^400 max_tokens must be an integer from 1 to 4096/);
  });

  it('refuses a private image URL with the same SSRF policy (URL_NOT_ALLOWED)', async () => {
    const error = await failure(() => ask([image('http://169.254.169.254/latest/meta-data')]));
    expect([error.status, error.code]).toEqual([400, 'URL_NOT_ALLOWED']);
  });

  it('refuses a message without an image, or with two', async () => {
    const none = await failure(() => ask([{ type: 'text', text: 'hello' }]));
    expect([none.status, none.code, none.param]).toEqual([400, 'INVALID_OPTIONS', 'messages']);
    const two = await failure(() => ask([image(), image()]));
    expect(two.message).toMatch(/one image per request/);
  });
});
