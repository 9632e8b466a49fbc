// Property-based fuzzing of the HTTP surface in-process (yoga.fetch): GraphQL documents
// built from the schema's own words and punctuation, JSON and GET framing, multipart
// framing and option values. Every answer must carry documented codes only, never an
// internal error or a 5xx, and the server must answer a plain query afterwards.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IrisApp } from '../../src/server/app.ts';
import { createTestApp } from '../api/support/app.ts';
import { expectDocumented, type Answer } from './support.ts';

const URL_ = 'http://iris.test/graphql';
// IRIS_FUZZ_RUNS raises the runs for a longer hunt; the time limit keeps `npm test` bounded.
const RUNS = { numRuns: Number(process.env.IRIS_FUZZ_RUNS ?? 1000), interruptAfterTimeLimit: Number(process.env.IRIS_FUZZ_MS ?? 6_000) };
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

async function fetchText(app: IrisApp, init: RequestInit, url = URL_): Promise<Answer> {
  const res = await app.yoga.fetch(url, init);
  return { status: res.status, text: await res.text() };
}

async function expectHealthy(app: IrisApp): Promise<void> {
  const res = await fetchText(app, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ models { id } }' }) });
  expect(JSON.parse(res.text)).toEqual({ data: { models: [{ id: 'fake' }] } });
}

const WORDS = ['query', 'subscription', 'mutation', 'fragment', 'on', 'caption', 'answer', 'generate', 'captionStream', 'models', 'id', 'text', 'tokens', 'image', 'base64', 'url', 'upload', 'options', 'maxNewTokens', 'temperature', 'stop', 'speculative', 'DRAFT', 'Query', 'ImageInput', 'String', 'File', '__schema', '__type', 'types', 'name', 'fields', 'ofType', '__typename', 'question', 'prompt', 'true', 'null', '$i', '$v', '@cost', '@skip', '@include', 'if'];
const PUNCT = ['{', '}', '(', ')', '[', ']', ':', '!', '=', '...', '$', '@', ',', ' ', '\n', '"', '"""', '#', '|', '&'];
const token = fc.oneof(fc.constantFrom(...WORDS), fc.constantFrom(...PUNCT), fc.string({ maxLength: 6 }), fc.integer().map(String), fc.double().map(String), fc.constant(`"${PNG}"`));
const documentText = fc.array(token, { maxLength: 120 }).map((t) => t.join(' '));

/** Well-formed operations with random arguments: these get past the parser to validation and execution. */
const inputValue: fc.Arbitrary<string> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom('null', 'true', '1', '-1', '1e400', '0.0000001', '"x"', `"${PNG}"`, 'DRAFT', '$i'),
    fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s)),
    fc.array(tie('value'), { maxLength: 3 }).map((v) => `[${v.join(', ')}]`),
    fc.array(fc.tuple(fc.constantFrom('base64', 'url', 'upload', 'maxNewTokens', 'temperature', 'topK', 'topP', 'stop', 'seed', 'x'), tie('value')), { maxLength: 3 }).map((kv) => `{ ${kv.map(([k, v]) => `${k}: ${v}`).join(', ')} }`),
  ),
})).value as fc.Arbitrary<string>;
const operation = fc
  .tuple(fc.constantFrom('caption', 'answer', 'generate', 'captionStream'), inputValue, inputValue, fc.constantFrom('text', 'finishReason', 'tokens { id text }', 'delta', '__typename'), fc.boolean())
  .map(([field, image, options, select, hasVariable]) => `${field.endsWith('Stream') ? 'subscription' : 'query'}${hasVariable ? '($i: ImageInput)' : ''} { ${field}(image: ${image}, options: ${options}, question: "q", prompt: "p") { ${select} } }`);

describe('fuzz: the HTTP surface', () => {
  const app = createTestApp();

  it('GraphQL documents: random token soup and well-formed operations with random arguments', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(documentText, operation), fc.constantFrom('application/json', 'application/graphql-response+json', 'text/event-stream'), async (query, accept) => {
        const answer = await fetchText(app, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body: JSON.stringify({ query, variables: { i: { base64: PNG } } }) });
        if (accept === 'text/event-stream') expect(answer.status).toBeLessThan(500);
        else expectDocumented(answer, query);
      }),
      RUNS,
    );
    await expectHealthy(app);
  });

  it('JSON and GET framing: arbitrary bodies, parameters of every type, arbitrary query strings', async () => {
    const field = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.string({ maxLength: 20 }));
    const body = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.record({ query: fc.oneof(field, fc.constant('{ models { id } }')), variables: field, extensions: field, operationName: field }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('POST', 'GET'), async (text, method) => {
        const answer = method === 'POST'
          ? await fetchText(app, { method, headers: { 'content-type': 'application/json' }, body: text })
          : await fetchText(app, { method, headers: { accept: 'application/json' } }, `${URL_}?${text}`);
        expectDocumented(answer, `${method} ${text}`);
      }),
      RUNS,
    );
    await expectHealthy(app);
  });

  it('multipart framing: random operations, maps and parts', async () => {
    const operations = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.constant(JSON.stringify({ query: 'query($f: File!) { caption(image: { upload: $f }) { text } }', variables: { f: null } })),
    );
    const map = fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)), fc.constant('{"0":["variables.f"]}'), fc.constant('{"0":["variables.f","variables.f"],"1":["x"]}'));
    const parts = fc.array(fc.tuple(fc.constantFrom('0', '1', 'map', 'operations', 'x'), fc.uint8Array({ maxLength: 64 })), { maxLength: 3 });
    await fc.assert(
      fc.asyncProperty(fc.option(operations), fc.option(map), parts, async (ops, m, files) => {
        const form = new FormData();
        if (ops !== null) form.set('operations', ops);
        if (m !== null) form.set('map', m);
        for (const [name, bytes] of files) form.append(name, new Blob([bytes]), 'f.png');
        const answer = await fetchText(app, { method: 'POST', headers: { 'graphql-require-preflight': '1' }, body: form });
        expectDocumented(answer, `${ops} ${m} ${files.length} parts`);
      }),
      RUNS,
    );
    await expectHealthy(app);
  });

  it('option values: every option given values of every type', async () => {
    const names = ['maxNewTokens', 'minNewTokens', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'noRepeatNgramSize', 'seed', 'stop', 'logprobs', 'topLogprobs', 'speculative', 'unknown'];
    const value = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(1e-40, -0, 1e308, 2 ** 31, 2 ** 53), fc.boolean(), fc.string({ maxLength: 10 }), fc.constantFrom('OFF', 'DRAFT', 'NGRAM'), fc.array(fc.string({ maxLength: 40 }), { maxLength: 20 }), fc.constant(null));
    const options = fc.dictionary(fc.constantFrom(...names), value, { maxKeys: 5 });
    await fc.assert(
      fc.asyncProperty(options, async (o) => {
        const query = 'query($i: ImageInput!, $o: GenerationOptions) { caption(image: $i, options: $o) { text } }';
        const answer = await fetchText(app, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables: { i: { base64: PNG }, o } }) });
        expectDocumented(answer, JSON.stringify(o));
      }),
      RUNS,
    );
    await expectHealthy(app);
  });
});
