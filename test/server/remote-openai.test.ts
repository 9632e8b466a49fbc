// A model entry on a remote OpenAI-compatible engine (`openai+http://…/v1#name`), tested
// against a real server: Iris's own /v1 on tiny-random, started on 127.0.0.1, as the
// remote; and vLLM's stream format as a recorded fixture (fixtures/README.md) replayed by
// a plain HTTP server, for the request Iris sends and the error mapping.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfig, engineConfigOf } from '../../src/config/config.ts';
import { loadConfig } from '../../src/config/settings.ts';
import { parseRemoteEndpoint } from '../../src/config/remote-model.ts';
import { IrisError } from '../../src/contract/types.ts';
import { RemoteOpenAIGenerator, mediaTypeOf, sseEvents } from '../../src/engine/remote-openai.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { createIrisApp, type IrisApp } from '../../src/server/app.ts';
import { listen, type IrisServer } from '../../src/server/listen.ts';
import { createEngineLoader } from '../../src/server/load-models.ts';
import { createEngineApp, gql, type EngineApp } from '../api/support/app.ts';
import { sceneAs, scenePng } from '../api/support/images.ts';
import { FIXTURES, ROOT } from '../helpers.ts';

const VLLM_STREAM = readFileSync(join(ROOT, 'test/server/fixtures/vllm-chat-stream.sse'), 'utf8');
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('remote model entries', () => {
  it('parse the base URL, the remote model, templates and the key; the config refuses bad ones', () => {
    const e = parseRemoteEndpoint('openai+http://:sekret-key@10.0.0.5:8000/v1/#Qwen/Qwen2.5-VL-7B-Instruct&caption=One%20line%2C%20please.&uuid=0');
    expect(e).toEqual({
      baseUrl: 'http://10.0.0.5:8000/v1',
      model: 'Qwen/Qwen2.5-VL-7B-Instruct',
      templates: { caption: 'One line, please.', answer: '{question}', generate: '{prompt}' },
      sendUuid: false,
      apiKey: 'sekret-key',
    });
    const config = loadConfig(['--model', 'big=openai+http://host:8000/v1#llava:7b', '--model', 'tiny=assets/models/tiny-random'], {});
    expect(config.models.specs.map((s) => [s.id, s.dir])).toEqual([['big', 'openai+http://host:8000/v1#llava:7b'], ['tiny', 'assets/models/tiny-random']]);
    expect(() => loadConfig(['--model', 'big=openai+http://host:8000/v1'], {})).toThrow(/names the remote's model after #/);
    expect(() => loadConfig(['--model', 'big=openai+ftp://host/v1#m'], {})).toThrow(/http or https/);
    expect(() => loadConfig(['--model', 'big=openai+http://host/v1#m&answer=no-placeholder'], {})).toThrow(/\{question\}/);
    expect(() => loadConfig(['--model', 'big=openai+http://host/v1#m&temperature=1'], {})).toThrow(/unknown remote model parameter "temperature"/);
  });

  it('name the image type for its data URL from its bytes', async () => {
    expect(mediaTypeOf(await scenePng())).toBe('image/png');
    expect(mediaTypeOf(await sceneAs('jpeg'))).toBe('image/jpeg');
    expect(mediaTypeOf(await sceneAs('webp'))).toBe('image/webp');
  });
});

/** A stand-in that replays recorded answers and keeps what it was sent. */
interface Replay {
  readonly url: string;
  readonly requests: { headers: IncomingMessage['headers']; body: Record<string, unknown> }[];
  answer: (res: ServerResponse) => void;
  close(): Promise<void>;
}

async function replayServer(model: string): Promise<Replay> {
  const state: Replay = {
    url: '',
    requests: [],
    answer: (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // In odd-sized pieces: events split across reads must be put back together.
      const bytes = Buffer.from(VLLM_STREAM);
      let at = 0;
      const next = (): void => {
        if (at >= bytes.length) return void res.end();
        res.write(bytes.subarray(at, (at += 37)));
        setImmediate(next);
      };
      next();
    },
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/v1/models') return void res.end(JSON.stringify({ object: 'list', data: [{ id: model, object: 'model' }] }));
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      state.requests.push({ headers: req.headers, body: JSON.parse(raw) as Record<string, unknown> });
      state.answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

describe("vLLM's stream format (recorded fixture)", () => {
  const MODEL = 'Qwen/Qwen2.5-VL-7B-Instruct';
  let replay: Replay;
  let generator: RemoteOpenAIGenerator;
  beforeAll(async () => {
    replay = await replayServer(MODEL);
    generator = new RemoteOpenAIGenerator({ modelId: 'big', endpoint: parseRemoteEndpoint(`openai+${replay.url}#${MODEL}`) });
  });
  afterAll(() => replay?.close());

  it('splits the SSE stream into its data payloads', async () => {
    const events: string[] = [];
    for await (const e of sseEvents(new Response(': ping\r\n\r\ndata: {"a":1}\r\n\r\ndata: x\ndata: y\n\ndata: [DONE]\n\n').body!)) events.push(e);
    expect(events).toEqual(['{"a":1}', 'x\ny', '[DONE]']);
  });

  it('sends the image as a data URL with its hash (uuid, routing keys), greedy options by their chat names, and reads the stream', async () => {
    const png = await scenePng();
    const deltas: string[] = [];
    const result = await generator.generate(
      { task: 'answer', image: png, question: 'What is above the square?', options: { maxNewTokens: 20, stop: ['\n'], topLogprobs: 0 } },
      { onDelta: (d) => deltas.push(d.text) },
    );
    expect(result).toMatchObject({ text: 'A red circle above a blue square.', finishReason: 'eos', model: 'big', usage: { promptTokens: 1283, completionTokens: 8 } });
    expect(deltas).toEqual(['A', ' red', ' circle', ' above', ' a', ' blue', ' square', '.']);
    const { headers, body } = replay.requests.at(-1)!;
    expect(headers['x-smg-routing-key']).toBe(sha256(png));
    expect(headers['x-iris-image-key']).toBe(sha256(png));
    expect(body).toEqual({
      model: MODEL,
      messages: [{ role: 'user', content: [
        { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` }, uuid: sha256(png) },
        { type: 'text', text: 'What is above the square?' },
      ] }],
      max_completion_tokens: 20,
      max_tokens: 20,
      temperature: 0,
      stop: ['\n'],
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('maps sampling options to vLLM fields and refuses the ones no such server has', async () => {
    const png = await scenePng();
    await generator.generate({ task: 'caption', image: png, options: { temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05, repetitionPenalty: 1.2, minNewTokens: 2, seed: 7, logprobs: true, topLogprobs: 2 } });
    expect(replay.requests.at(-1)!.body).toMatchObject({ temperature: 0.7, top_k: 40, top_p: 0.9, min_p: 0.05, repetition_penalty: 1.2, min_tokens: 2, seed: 7, logprobs: true, top_logprobs: 2 });
    expect(replay.requests.at(-1)!.body.messages).toMatchObject([{ content: [{ type: 'image_url' }, { type: 'text', text: 'Describe the image in one short caption.' }] }]);
    const before = replay.requests.length;
    await expect(generator.generate({ task: 'caption', image: png, options: { noRepeatNgramSize: 3 } })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(generator.generate({ task: 'caption', image: png, options: { speculative: 'draft' } })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(generator.generate({ task: 'caption', image: png, options: { attention: true } })).rejects.toMatchObject({ code: 'ATTENTION_UNAVAILABLE' });
    expect(replay.requests.length).toBe(before); // refused before anything was sent
  });

  it("maps the remote's errors to Iris's codes", async () => {
    const png = await scenePng();
    const failWith = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      replay.answer = (res) => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    const codeOf = async (): Promise<IrisError> => generator.generate({ task: 'caption', image: png }).then(() => { throw new Error('expected an error'); }, (e: IrisError) => e);
    failWith(429, { error: { message: 'too many', type: 'rate_limit_error', code: 429 } }, { 'retry-after': '3' });
    expect(await codeOf()).toMatchObject({ code: 'OVERLOADED', retryAfterSeconds: 3 });
    failWith(503, { object: 'error', message: 'engine busy', type: 'ServiceUnavailableError', param: null, code: 503 });
    expect(await codeOf()).toMatchObject({ code: 'OVERLOADED', retryAfterSeconds: 1 });
    failWith(400, { object: 'error', message: "This model's maximum context length is 4096 tokens", type: 'BadRequestError', param: null, code: 400 });
    expect(await codeOf()).toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringContaining('maximum context length') });
    failWith(400, { error: { message: 'Failed to load image', type: 'BadRequestError', code: 400 } });
    expect(await codeOf()).toMatchObject({ code: 'BAD_IMAGE' });
    failWith(404, { error: { message: 'The model `x` does not exist.', type: 'NotFoundError', code: 404 } });
    expect(await codeOf()).toMatchObject({ code: 'MODEL_UNAVAILABLE' });
    failWith(504, {});
    expect(await codeOf()).toMatchObject({ code: 'TIMEOUT' });
    replay.answer = (res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(VLLM_STREAM.slice(0, 400)); // broken off mid-stream
    expect(await codeOf()).toMatchObject({ code: 'MODEL_UNAVAILABLE' });
    const unreachable = new RemoteOpenAIGenerator({ modelId: 'big', endpoint: parseRemoteEndpoint('openai+http://127.0.0.1:1/v1#m') });
    await expect(unreachable.generate({ task: 'caption', image: png })).rejects.toMatchObject({ code: 'MODEL_UNAVAILABLE' });
    expect(await unreachable.probe()).toMatchObject({ isHealthy: false, detail: expect.stringContaining('unreachable') });
    expect(await generator.probe()).toEqual({ isHealthy: true, detail: undefined });
  });
});

describe('what a remote entry reports (models, /metrics, /ready, timings)', () => {
  const MODEL = 'Qwen/Qwen2.5-VL-7B-Instruct';
  let replay: Replay;
  let front: IrisApp;
  let isClosed = false;
  const engines: Engine[] = [];
  beforeAll(async () => {
    replay = await replayServer(MODEL);
    // A local model beside it, for contrast: its engine's figures are real.
    const config = createConfig({ models: { specs: [{ id: 'big', dir: `openai+${replay.url}#${MODEL}` }, { id: 'tiny', dir: FIXTURES.encoderDecoder }], imageWorkers: 0 } });
    front = createIrisApp({ config, load: createEngineLoader({ engine: engineConfigOf(config), remoteProbeMs: 100, onEngine: (_id, engine) => engines.push(engine) }), logUnexpected: () => undefined });
    await front.registry.loaded;
  });
  afterAll(async () => {
    if (!isClosed) await replay?.close();
    await Promise.all(engines.map((e) => e.release()));
  });

  const MODELS = '{ models { id kind dtype ready family remote { name inFlight healthy } } }';
  const metrics = async (): Promise<string> => (await front.yoga.fetch('http://iris.test/metrics')).text();
  const readyModels = async (): Promise<unknown> => ((await (await front.yoga.fetch('http://iris.test/ready')).json()) as { models: unknown }).models;

  it('its in-flight count and health, no local engine figures; its results say imageCached and prefixCached null (unknown)', async () => {
    expect((await gql(front, MODELS)).body.data?.models).toEqual([
      { id: 'big', kind: 'REMOTE', dtype: null, ready: true, family: null, remote: { name: MODEL, inFlight: 0, healthy: true } },
      { id: 'tiny', kind: 'LOCAL', dtype: 'fp32', ready: true, family: 'CROSS_ATTENTION', remote: null },
    ]);
    // The remote answers its first pieces and holds the rest until released.
    const cut = VLLM_STREAM.indexOf('\n\n', VLLM_STREAM.indexOf('"content":"A"')) + 2;
    let release!: () => void;
    replay.answer = (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' }).write(VLLM_STREAM.slice(0, cut));
      release = () => res.end(VLLM_STREAM.slice(cut));
    };
    const sent = replay.requests.length;
    const png = (await scenePng()).toString('base64');
    const caption = gql(front, 'query ($i: String!) { caption(image: { base64: $i }, model: "big") { text timings { imageCached prefixCached resultCached imageEncodeMs } } }', { i: png });
    for (let i = 0; i < 400 && replay.requests.length === sent; i++) await new Promise((r) => setTimeout(r, 10));
    expect(replay.requests.length).toBe(sent + 1);
    const during = await metrics();
    expect((await gql(front, MODELS)).body.data?.models).toMatchObject([{ id: 'big', remote: { inFlight: 1, healthy: true } }, { id: 'tiny', remote: null }]);
    expect(during).toMatch(/^iris_remote_in_flight\{model="big"\} 1$/m);
    expect(during).not.toMatch(/iris_remote_in_flight\{model="tiny"/);
    // No queue, batch or KV figures for a model with no local engine; the local one has them.
    for (const gauge of ['iris_engine_queue_depth', 'iris_engine_batch_size', 'iris_engine_kv_used_tokens', 'iris_engine_kv_capacity_tokens']) {
      expect(during).not.toMatch(new RegExp(`^${gauge}\\{model="big"\\}`, 'm'));
      expect(during).toMatch(new RegExp(`^${gauge}\\{model="tiny"\\} \\d+$`, 'm'));
    }
    expect(await readyModels()).toEqual([{ id: 'big', state: 'ready', kind: 'remote', healthy: true, inFlight: 1 }, { id: 'tiny', state: 'ready', kind: 'local' }]);
    release();
    const answer = await caption;
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data?.caption).toEqual({ text: 'A red circle above a blue square.', timings: { imageCached: null, prefixCached: null, resultCached: false, imageEncodeMs: 0 } });
    const after = await metrics();
    expect(after).toMatch(/^iris_remote_in_flight\{model="big"\} 0$/m);
    expect(after).toMatch(/^iris_generations_total\{model="big",task="caption",outcome="ok"\} 1$/m);
    // Iris encoded no image for it: no encoding counted (neither cached nor not), no image_encode phase.
    expect(after).not.toMatch(/iris_image_encodings_total\{model="big"/);
    expect(after).not.toMatch(/iris_generation_phase_seconds_count\{model="big",phase="image_encode"\}/);
    expect(after).toMatch(/iris_generation_phase_seconds_count\{model="big",phase="decode"\} 1/);
    // A local model's result says what its cache did.
    const local = await gql(front, 'query ($i: String!) { caption(image: { base64: $i }, model: "tiny", options: { maxNewTokens: 3 }) { timings { imageCached prefixCached } } }', { i: png });
    expect(local.body.data?.caption).toEqual({ timings: { imageCached: false, prefixCached: false } });
  });

  it('not ready, in models and /ready, once the remote stops answering', async () => {
    await replay.close();
    isClosed = true;
    for (let i = 0; i < 200 && front.registry.list()[0].healthy; i++) await new Promise((r) => setTimeout(r, 25));
    expect((await gql(front, MODELS)).body.data?.models).toMatchObject([{ id: 'big', kind: 'REMOTE', ready: false, remote: { inFlight: 0, healthy: false } }, { id: 'tiny', ready: true }]);
    expect(await readyModels()).toMatchObject([{ id: 'big', kind: 'remote', healthy: false, inFlight: 0, detail: expect.stringContaining('unreachable') }, { id: 'tiny' }]);
    expect(await metrics()).toMatch(/^iris_model_ready\{model="big"\} 0$/m);
  });
});

describe('through another Iris (its /v1 on 127.0.0.1, tiny-random)', () => {
  let remote: EngineApp;
  let remoteServer: IrisServer;
  let front: IrisApp;
  const OPTIONS = { maxNewTokens: 8 };
  beforeAll(async () => {
    remote = await createEngineApp();
    remoteServer = await listen(remote.app, { host: '127.0.0.1', port: 0 });
    const base = remoteServer.url.replace(/\/graphql$/, '/v1');
    // caption= (empty): the image alone, which an Iris remote reads as a caption request.
    const config = createConfig({ models: { specs: [{ id: 'big', dir: `openai+${base}#tiny&caption=` }] } });
    front = createIrisApp({ config, load: createEngineLoader({ engine: engineConfigOf(config), remoteProbeMs: 100 }), logUnexpected: () => undefined });
    await front.registry.loaded;
  });
  let isRemoteClosed = false;
  afterAll(async () => {
    if (!isRemoteClosed) await remoteServer?.close();
    await remote?.release();
  });

  const CAPTION = 'query ($i: String!, $o: GenerationOptions, $m: String) { caption(image: { base64: $i }, options: $o, model: $m) { text finishReason usage { completionTokens } } }';
  const ANSWER = 'query ($i: String!, $q: String!, $o: GenerationOptions, $m: String) { answer(image: { base64: $i }, question: $q, options: $o, model: $m) { text finishReason } }';

  it('is ready while its remote is, and serves GraphQL captions and answers with the remote\'s own results', async () => {
    expect((await front.yoga.fetch('http://iris.test/ready')).status).toBe(200);
    const png = (await scenePng()).toString('base64');
    const direct = await gql(remote.app, CAPTION, { i: png, o: OPTIONS });
    const through = await gql(front, CAPTION, { i: png, o: OPTIONS, m: 'big' });
    expect(through.body.errors).toBeUndefined();
    expect(through.body.data).toEqual(direct.body.data);
    const question = 'what color is the square?';
    const directAnswer = await gql(remote.app, ANSWER, { i: png, q: question, o: OPTIONS });
    const throughAnswer = await gql(front, ANSWER, { i: png, q: question, o: OPTIONS, m: 'big' });
    expect(throughAnswer.body.data).toEqual(directAnswer.body.data);
    const refused = await gql(front, CAPTION, { i: png, o: { noRepeatNgramSize: 2 }, m: 'big' });
    expect(refused.body.errors?.[0]).toMatchObject({ extensions: { code: 'INVALID_OPTIONS' } });
  });

  it('streams over GraphQL SSE, piece by piece, ending in the same generation', async () => {
    const png = (await scenePng()).toString('base64');
    const response = await front.yoga.fetch('http://iris.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription ($i: String!) { captionStream(image: { base64: $i }, options: { maxNewTokens: 8, minNewTokens: 8 }, model: "big") { delta done generation { text } } }', variables: { i: png } }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const events: { delta: string; done: boolean; generation: { text: string } | null }[] = [];
    for await (const data of sseEvents(response.body!)) {
      if (data === '') continue; // yoga's `event: complete`
      const payload = JSON.parse(data) as { data?: { captionStream: (typeof events)[number] } };
      if (payload.data) events.push(payload.data.captionStream);
    }
    const last = events.at(-1)!;
    expect(last.done).toBe(true);
    expect(events.length).toBeGreaterThan(2);
    expect(events.filter((e) => !e.done).map((e) => e.delta).join('')).toBe(last.generation!.text);
  });

  it('propagates cancellation: aborting after the first piece aborts the fetch, and the remote cancels its generation', async () => {
    const outcomes = async (): Promise<number> => {
      const text = await (await remote.app.yoga.fetch('http://iris.test/metrics')).text();
      return Number(/^iris_generations_total\{model="tiny",task="caption",outcome="CANCELLED"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    };
    const before = await outcomes();
    const controller = new AbortController();
    const pieces: string[] = [];
    const result = await front.registry.generate('big', { task: 'caption', image: await scenePng(), options: { maxNewTokens: 400, minNewTokens: 400 } }, {
      signal: controller.signal,
      onDelta: (d) => {
        pieces.push(d.text);
        controller.abort();
      },
    }).catch((e: IrisError) => e);
    expect(result).toMatchObject({ finishReason: 'cancelled' });
    expect(pieces.length).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 200 && (await outcomes()) === before; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await outcomes()).toBe(before + 1);
  });

  it('turns /ready 503 when the remote stops answering, with the reason in models, and requests get MODEL_UNAVAILABLE', async () => {
    await remoteServer.close();
    isRemoteClosed = true;
    for (let i = 0; i < 100 && (await front.yoga.fetch('http://iris.test/ready')).status === 200; i++) await new Promise((r) => setTimeout(r, 25));
    expect((await front.yoga.fetch('http://iris.test/ready')).status).toBe(503);
    expect(front.registry.list()[0]).toMatchObject({ state: 'ready', healthy: false, detail: expect.stringContaining('unreachable') });
    const png = (await scenePng()).toString('base64');
    const answer = await gql(front, CAPTION, { i: png, m: 'big' });
    expect(answer.body.errors?.[0]).toMatchObject({ extensions: { code: 'MODEL_UNAVAILABLE' } });
  });
});
