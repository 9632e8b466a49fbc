// The OpenAI routes in-process (yoga.fetch) on a recording test double: how chat messages
// map onto tasks per model family, which fields become which options, and the error
// bodies for requests refused before anything runs.
import { describe, expect, it } from 'vitest';
import { createConfig } from '../../src/config/config.ts';
import { TASKS, type Task } from '../../src/contract/types.ts';
import { createIrisApp, type IrisApp } from '../../src/server/app.ts';
import { chooseTask, familyOf, matchAnswerTemplate } from '../../src/server/openai/tasks.ts';
import { createFakeGenerator, type FakeGenerator } from './support/fake-generator.ts';

const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';
const SHAPES_TEMPLATES = { caption: '', answer: '<question> {question} <answer>', generate: '{prompt}' };

function appWith(tasks: readonly Task[], templates?: Record<string, string>): { app: IrisApp; fake: FakeGenerator } {
  const fake = createFakeGenerator();
  const config = createConfig({ models: { specs: [{ id: 'fake', dir: '/nonexistent' }] }, limits: { bodyBytes: 4096 } });
  const app = createIrisApp({ config, load: async () => ({ generator: fake, tasks, templates }), logUnexpected: () => undefined });
  return { app, fake };
}

async function chat(app: IrisApp, body: unknown, headers: Record<string, string> = {}) {
  const res = await app.yoga.fetch('http://iris.test/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

const user = (text?: string) => ({ role: 'user', content: [{ type: 'image_url', image_url: { url: PNG } }, ...(text === undefined ? [] : [{ type: 'text', text }])] });

describe('chat messages → tasks', () => {
  it('vqa family (shapes-base): image alone captions, a question answers, other text continues', async () => {
    const { app, fake } = appWith(TASKS, SHAPES_TEMPLATES);
    await app.registry.loaded;
    for (const text of [undefined, 'what color is the square?', '<question> is there a red circle <answer>', 'a large red']) {
      expect((await chat(app, { model: 'fake', messages: [user(text)] })).status).toBe(200);
    }
    expect(fake.requests.map(({ task, question, prompt }) => ({ task, question, prompt }))).toEqual([
      { task: 'caption', question: undefined, prompt: undefined },
      { task: 'answer', question: 'what color is the square?', prompt: undefined },
      { task: 'answer', question: 'is there a red circle', prompt: undefined },
      { task: 'generate', question: undefined, prompt: 'a large red' },
    ]);
  });

  it('captioner family (no answer template): any text is a prefix to continue', () => {
    const captioner = { tasks: ['caption', 'generate'] as Task[] };
    expect(familyOf(captioner)).toBe('captioner');
    expect(chooseTask('what is this?', captioner)).toEqual({ task: 'generate', prompt: 'what is this?' });
    expect(chooseTask('', captioner)).toEqual({ task: 'caption' });
    expect(familyOf({ tasks: TASKS })).toBe('vqa');
  });

  it('matches a filled-in answer template only as a whole', () => {
    expect(matchAnswerTemplate('<question>  how many shapes are there?   <answer>', SHAPES_TEMPLATES.answer)).toBe('how many shapes are there?');
    expect(matchAnswerTemplate('tell me <question> x <answer> more', SHAPES_TEMPLATES.answer)).toBeUndefined();
    expect(matchAnswerTemplate('anything', '{prompt}')).toBeUndefined();
  });

  it('takes the text of the last user message and the latest image before it (follow-up questions)', async () => {
    const { app, fake } = appWith(TASKS, SHAPES_TEMPLATES);
    const messages = [
      { role: 'system', content: 'You are helpful.' },
      user(),
      { role: 'assistant', content: 'a small red circle' },
      { role: 'user', content: 'is it small or large?' },
    ];
    expect((await chat(app, { model: 'fake', messages })).status).toBe(200);
    expect(fake.requests[0]).toMatchObject({ task: 'answer', question: 'is it small or large?' });
    expect(fake.requests[0].image.length).toBeGreaterThan(0);
  });
});

describe('chat fields → options', () => {
  it('maps OpenAI names and Iris extras onto generation options; top_p 1 means off', async () => {
    const { app, fake } = appWith(TASKS);
    const body = { model: 'fake', messages: [user()], max_tokens: 9, temperature: 0.5, top_p: 1, seed: 3, stop: 'x', logprobs: true, top_logprobs: 2, top_k: 5, min_p: 0.1, repetition_penalty: 1.2, no_repeat_ngram_size: 3, min_tokens: 1, speculative: 'ngram', n: 1, user: 'u1' };
    expect((await chat(app, body)).status).toBe(200);
    expect(fake.requests[0].options).toEqual({ maxNewTokens: 9, temperature: 0.5, seed: 3, stop: ['x'], logprobs: true, topLogprobs: 2, topK: 5, minP: 0.1, repetitionPenalty: 1.2, noRepeatNgramSize: 3, minNewTokens: 1, speculative: 'ngram' });
  });

  it('refuses what it cannot honour, naming the field', async () => {
    const { app, fake } = appWith(TASKS);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ n: 3 }, 'n'],
      [{ presence_penalty: 0.5 }, 'presence_penalty'],
      [{ tools: [] }, 'tools'],
      [{ response_format: { type: 'json_object' } }, 'response_format'],
      [{ temperature: 11 }, 'temperature'],
      [{ stop: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'] }, 'stop'],
      [{ speculative: 'fast' }, 'speculative'],
    ];
    for (const [extra, param] of cases) {
      const res = await chat(app, { model: 'fake', messages: [user()], ...extra });
      expect([res.status, res.body.error.type, res.body.error.code, res.body.error.param]).toEqual([400, 'invalid_request_error', 'INVALID_OPTIONS', param]);
    }
    expect(fake.requests).toHaveLength(0);
  });
});

describe('requests refused before anything runs', () => {
  it('answers malformed bodies, oversized bodies and unknown routes in OpenAI error shape', async () => {
    const { app } = appWith(TASKS);
    expect((await chat(app, '{not json')).body.error).toMatchObject({ code: 'INVALID_OPTIONS', message: 'the request body is not valid JSON' });
    const big = await chat(app, { model: 'fake', messages: [user('x'.repeat(5000))] });
    expect([big.status, big.body.error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const missing = await app.yoga.fetch('http://iris.test/v1/completions', { method: 'POST' });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).error.type).toBe('not_found_error');
  });

  it('passes OVERLOADED on with 503 and a retry-after header', async () => {
    const { IrisError } = await import('../../src/contract/types.ts');
    const fake = createFakeGenerator({ fail: new IrisError('OVERLOADED', 'busy; retry in 1 s', { retryAfterSeconds: 1 }) });
    const app = createIrisApp({ config: createConfig({ models: { specs: [{ id: 'fake', dir: '/x' }] } }), load: async () => ({ generator: fake, tasks: TASKS }), logUnexpected: () => undefined });
    const res = await chat(app, { model: 'fake', messages: [user()] });
    expect([res.status, res.headers.get('retry-after'), res.body.error.code, res.body.error.type]).toEqual([503, '1', 'OVERLOADED', 'server_error']);
  });

  it('masks unexpected errors as 500 INTERNAL and logs them', async () => {
    const logged: unknown[] = [];
    const fake = createFakeGenerator({ fail: new Error('secret detail') });
    const app = createIrisApp({ config: createConfig({ models: { specs: [{ id: 'fake', dir: '/x' }] } }), load: async () => ({ generator: fake, tasks: TASKS }), logUnexpected: (e) => logged.push(e) });
    const res = await chat(app, { model: 'fake', messages: [user()] });
    expect([res.status, res.body.error.code, res.body.error.message]).toEqual([500, 'INTERNAL', 'internal server error']);
    expect(logged).toHaveLength(1);
  });
});

describe('while the server drains', () => {
  it('serves /v1 through the drain delay; once new requests are refused, /v1 gets 503 SHUTTING_DOWN in OpenAI\'s shape, as GraphQL does', async () => {
    const { app, fake } = appWith(TASKS, SHAPES_TEMPLATES);
    await app.registry.loaded;
    app.drain.start(); // the delay: not ready, still serving
    expect((await chat(app, { model: 'fake', messages: [user()] })).status).toBe(200);
    app.drain.refuseNew();
    const served = fake.requests.length;
    const refused = await chat(app, { model: 'fake', messages: [user()] });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body.error).toMatchObject({ code: 'SHUTTING_DOWN', type: 'server_error' });
    expect((await app.yoga.fetch('http://iris.test/v1/models')).status).toBe(503);
    expect(fake.requests.length).toBe(served); // nothing reached the model
  });
});
