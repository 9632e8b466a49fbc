// The OpenAI API where quality matters and where clients leave: the openai client captions,
// answers and continues the sample scenes on the shipped model (skipped until it has
// landed); and a client that goes away mid-generation stops it, streamed or not.
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngineConfig } from '../../src/config/config.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { createEngineLoader } from '../../src/server/load-models.ts';
import { createFakeGenerator } from '../api/support/fake-generator.ts';
import { SHIPPED_MODEL, isShippedModelPresent } from '../helpers.ts';
import { startIris, type RunningIris } from './support.ts';
import { readSamples, type SampleLabel } from '../golden/make-goldens.ts';

const SAMPLES = new URL('../../assets/samples/', import.meta.url);
type Sample = SampleLabel;

describe.skipIf(!isShippedModelPresent)('OpenAI API on the shipped model (shapes-base)', () => {
  let samples: Sample[] = [];
  beforeAll(async () => {
    samples = await readSamples();
  });
  const dataUrl = (s: Sample) => `data:image/png;base64,${readFileSync(new URL(s.image, SAMPLES)).toString('base64')}`;
  let iris: RunningIris;
  let client: OpenAI;
  const engines: Engine[] = [];

  beforeAll(async () => {
    iris = await startIris({
      load: createEngineLoader({ engine: createEngineConfig(), onEngine: (_, engine) => engines.push(engine) }),
      config: { models: { specs: [{ id: 'shapes-base', dir: SHIPPED_MODEL }] } },
    });
    client = new OpenAI({ baseURL: iris.url.replace('/graphql', '/v1'), apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await iris.server.close();
    await Promise.all(engines.map((e) => e.release()));
  });

  const say = async (s: Sample, text?: string): Promise<string> => {
    const content: OpenAI.Chat.Completions.ChatCompletionContentPart[] = [{ type: 'image_url', image_url: { url: dataUrl(s) } }];
    if (text !== undefined) content.push({ type: 'text', text });
    const completion = await client.chat.completions.create({ model: 'shapes-base', messages: [{ role: 'user', content }] });
    return completion.choices[0].message.content ?? '';
  };

  it('captions the sample scenes from the image alone', async () => {
    const captions = await Promise.all(samples.map((s) => say(s)));
    const exact = captions.filter((c, i) => c === samples[i].caption).length;
    expect(exact).toBeGreaterThanOrEqual(samples.length - 1);
  });

  it('answers questions (ending in ?) about the sample scenes', async () => {
    const asked = samples.flatMap((s) => s.questions.map((q) => ({ s, q })));
    const answers = await Promise.all(asked.map(({ s, q }) => say(s, q.question)));
    const right = answers.filter((a, i) => a === asked[i].q.answer).length;
    expect(right / asked.length).toBeGreaterThanOrEqual(0.8);
  });

  it('passes on Iris\'s warnings and confidence (iris_warnings, iris_confidence), streamed and not', async () => {
    const content: OpenAI.Chat.Completions.ChatCompletionContentPart[] = [{ type: 'image_url', image_url: { url: dataUrl(samples[0]) } }, { type: 'text', text: 'what is in this photo?' }];
    const completion = await client.chat.completions.create({ model: 'shapes-base', messages: [{ role: 'user', content }] });
    const choice = completion.choices[0] as unknown as { iris_warnings: Array<{ code: string; words: string[] }>; iris_confidence: { tokens: number } };
    expect(choice.iris_warnings).toEqual([expect.objectContaining({ code: 'UNKNOWN_WORDS', words: expect.arrayContaining(['photo']) })]);
    expect(choice.iris_confidence.tokens).toBe(completion.usage!.completion_tokens);
    const stream = await client.chat.completions.create({ model: 'shapes-base', messages: [{ role: 'user', content }], stream: true });
    let last: unknown;
    for await (const chunk of stream) if (chunk.choices[0]?.finish_reason) last = chunk.choices[0];
    expect((last as typeof choice).iris_warnings).toEqual(choice.iris_warnings);
    const plain = await say(samples[0], 'what color is the square?');
    expect(plain).toBe('green');
  });

  it('continues other text, streamed, as the caption that starts with it', async () => {
    const s = samples[0];
    const stream = await client.chat.completions.create({
      model: 'shapes-base',
      stream: true,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl(s) } }, { type: 'text', text: s.continuation.prefix }] }],
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(`${s.continuation.prefix} ${text.trim()}`).toBe(s.continuation.caption);
  });
});

describe('a client that goes away', () => {
  let iris: RunningIris;
  const fake = createFakeGenerator({ text: 'one two three four five six seven eight nine ten', stepMs: 40 });
  const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';
  const body = (stream: boolean) => JSON.stringify({ model: 'fake', stream, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: PNG } }] }] });

  beforeAll(async () => {
    iris = await startIris({ generator: fake });
  });
  afterAll(() => iris.server.close());

  const url = () => iris.url.replace('/graphql', '/v1/chat/completions');
  const waitForAbort = async (n: number) => {
    for (let i = 0; i < 100 && fake.aborted.length < n; i++) await new Promise((r) => setTimeout(r, 20));
    return fake.aborted.length;
  };

  it('stops a streamed generation when the client closes the stream', async () => {
    const controller = new AbortController();
    const res = await fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(true), signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read(); // the role chunk (sent with the first piece)
    controller.abort();
    expect(await waitForAbort(1)).toBe(1);
  });

  it('stops a non-streamed generation when the client disconnects', async () => {
    const controller = new AbortController();
    const started = fake.started(fake.requests.length + 1);
    const pending = fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(false), signal: controller.signal }).catch(() => undefined);
    await started;
    controller.abort();
    await pending;
    expect(await waitForAbort(2)).toBe(2);
  });

  it('lets an uninterrupted generation finish (the control)', async () => {
    const res = await fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(false) });
    expect(((await res.json()) as any).choices[0].message.content).toBe('one two three four five six seven eight nine ten');
    expect(fake.aborted.length).toBe(2);
  });
});
