import { parse, type EnumTypeDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { TASKS } from '../../src/contract/types.ts';
import { typeDefs } from '../../schema/index.ts';
import { createFakeGenerator } from './support/fake-generator.ts';
import { captionOnlyFolder, createEngineApp, createTestApp, gql } from './support/app.ts';
import { sceneAs, scenePng } from './support/images.ts';

const GENERATION = 'text finishReason model tokens { id text logprob } usage { promptTokens imageTokens completionTokens } timings { queueMs imageEncodeMs imageCached prefillMs decodeMs totalMs }';

describe('schema', () => {
  it('captions a base64 image and returns the whole Generation', async () => {
    const generator = createFakeGenerator({ text: 'a large blue square' });
    const app = createTestApp({ generator });
    const image = (await scenePng()).toString('base64');
    const res = await gql(app, `query($i: String!) { caption(image: { base64: $i }) { ${GENERATION} } }`, { i: image });
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    const caption = res.body.data?.caption as Record<string, unknown>;
    expect(caption.text).toBe('a large blue square');
    expect(caption.finishReason).toBe('EOS');
    expect(caption.tokens).toHaveLength(4);
    expect(caption.usage).toEqual({ promptTokens: 1, imageTokens: 64, completionTokens: 4 });
    expect(caption.timings).toMatchObject({ imageCached: false });
    expect(generator.requests[0].task).toBe('caption');
    expect(Buffer.from(generator.requests[0].image).equals(Buffer.from(image, 'base64'))).toBe(true);
  });

  it('passes the question, prompt and camelCased options, dropping explicit nulls', async () => {
    const generator = createFakeGenerator();
    const app = createTestApp({ generator });
    const i = `data:image/jpeg;base64,${(await sceneAs('jpeg')).toString('base64')}`;
    const res = await gql(
      app,
      `query($i: String!) {
        a: answer(image: { base64: $i }, question: "what color is the square?", options: { maxNewTokens: 3, topK: 5, topP: 0.9, seed: 7, stop: ["."], temperature: null }) { text }
        g: generate(image: { base64: $i }, prompt: "a large", options: { minNewTokens: 1, repetitionPenalty: 1.2, noRepeatNgramSize: 2, minP: 0.1, logprobs: true, topLogprobs: 2 }) { text }
      }`,
      { i },
    );
    expect(res.body.errors).toBeUndefined();
    // The two fields run concurrently: find each request by its task.
    const answer = generator.requests.find((r) => r.task === 'answer');
    const generate = generator.requests.find((r) => r.task === 'generate');
    expect(answer).toMatchObject({ task: 'answer', question: 'what color is the square?', options: { maxNewTokens: 3, topK: 5, topP: 0.9, seed: 7, stop: ['.'] } });
    expect(answer?.options).not.toHaveProperty('temperature');
    expect(generate).toMatchObject({ task: 'generate', prompt: 'a large', options: { minNewTokens: 1, logprobs: true, topLogprobs: 2 } });
  });

  it('lists models with tasks, readiness and dtype', async () => {
    const app = createTestApp();
    await app.registry.loaded;
    const res = await gql(app, '{ models { id tasks state ready dtype default } }');
    expect(res.body.data?.models).toEqual([{ id: 'fake', tasks: ['CAPTION', 'ANSWER', 'GENERATE'], state: 'READY', ready: true, dtype: 'fp32', default: true }]);
  });

  it('lists the tasks the loaded model\'s folder has templates for', async () => {
    const folder = await captionOnlyFolder();
    const { app, release } = await createEngineApp({}, folder.dir);
    try {
      expect((await gql(app, '{ models { id tasks } }')).body.data?.models).toEqual([{ id: 'tiny', tasks: ['CAPTION', 'GENERATE'] }]);
    } finally {
      await release();
      await folder.remove();
    }
  });

  it('has the contract\'s TASKS as the SDL\'s Task enum', () => {
    const task = parse(typeDefs).definitions.find((d): d is EnumTypeDefinitionNode => d.kind === 'EnumTypeDefinition' && d.name.value === 'Task');
    expect(task?.values?.map((v) => v.name.value.toLowerCase())).toEqual([...TASKS]);
  });

  it('enforces @oneOf on ImageInput', async () => {
    const app = createTestApp();
    const res = await gql(app, '{ caption(image: { base64: "AAAA", url: "http://example.invalid/x.png" }) { text } }');
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0].message).toMatch(/exactly one/i);
  });

  it('serves /health, /ready and /metrics', async () => {
    let loaded: (() => void) | undefined;
    const generator = createFakeGenerator();
    const { createConfig } = await import('../../src/config/config.ts');
    const { createIrisApp } = await import('../../src/server/app.ts');
    const app = createIrisApp({
      config: createConfig({ models: { specs: [{ id: 'slow', dir: '/x' }] } }),
      load: () => new Promise((resolve) => (loaded = () => resolve({ generator, tasks: ['caption'], attention: false }))),
    });
    expect((await app.yoga.fetch('http://iris.test/health')).status).toBe(200);
    const before = await app.yoga.fetch('http://iris.test/ready');
    expect(before.status).toBe(503);
    expect(await before.json()).toEqual({ ready: false, models: [{ id: 'slow', state: 'loading', kind: 'local' }] });
    // A model serves no task until it is loaded; then the ones it reports.
    expect((await gql(app, '{ models { tasks state } }')).body.data?.models).toEqual([{ tasks: [], state: 'LOADING' }]);
    loaded?.();
    await app.registry.loaded;
    expect((await gql(app, '{ models { tasks state } }')).body.data?.models).toEqual([{ tasks: ['CAPTION'], state: 'READY' }]);
    expect((await app.yoga.fetch('http://iris.test/ready')).status).toBe(200);
    await gql(app, `query($i: String!) { caption(image: { base64: $i }) { text } }`, { i: (await scenePng()).toString('base64') });
    const metrics = await (await app.yoga.fetch('http://iris.test/metrics')).text();
    expect(metrics).toContain('iris_generations_total{model="slow",task="caption",outcome="ok"} 1');
    expect(metrics).toContain('iris_model_ready{model="slow"} 1');
    expect(metrics).toContain('iris_tokens_total{model="slow",kind="completion"} 4');
    expect(metrics).toContain('process_resident_memory_bytes');
    expect(metrics).toContain('iris_time_to_first_token_seconds_count{model="slow",task="caption"} 1');
  });
});
