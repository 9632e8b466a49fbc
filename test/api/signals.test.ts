// The signals every result carries, on the real engine (tiny-random fixture) behind the
// in-process GraphQL app: words of the question or prompt the vocabulary lacks
// (UNKNOWN_WORDS warnings), and the confidence summary of the generated tokens'
// log-probabilities, with or without logprobs asked for.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.ts';
import type { Engine } from '../../src/engine/engine.ts';
import type { IrisApp } from '../../src/server/app.ts';
import { RowDecoder } from '../../src/engine/row-decoder.ts';
import { resolveOptions } from '../../text/sampling/options.ts';
import { TextTokenizer } from '../../text/tokenizer.ts';
import { FIXTURES } from '../helpers.ts';
import { readSse } from '../socket/support.ts';
import { createTestApp, gql } from './support/app.ts';
import { scenePng } from './support/images.ts';

interface Generation {
  text: string;
  tokens: { id: number; logprob: number | null }[];
  warnings: { code: string; message: string; words: string[] }[];
  confidence: { tokens: number; meanLogprob: number | null; minLogprob: number | null; perplexity: number | null };
}

const FIELDS = 'text tokens { id logprob } warnings { code message words } confidence { tokens meanLogprob minLogprob perplexity }';

describe('result signals through GraphQL on the engine', () => {
  let engine: Engine;
  let app: IrisApp;
  let image: string;
  beforeAll(async () => {
    engine = await createEngine({ modelDir: FIXTURES.encoderDecoder, imageWorkers: 0 });
    app = createTestApp({ generator: engine });
    await app.registry.loaded;
    image = (await scenePng(64)).toString('base64');
  });
  afterAll(() => engine.release());

  const run = async (field: string, args: string, options: Record<string, unknown>): Promise<Generation> => {
    const res = await gql(app, `query($i: String!, $o: GenerationOptions) { r: ${field}(image: { base64: $i }${args}, options: $o) { ${FIELDS} } }`, { i: image, o: options });
    expect(res.body.errors).toBeUndefined();
    return res.body.data!.r as Generation;
  };

  it('reports the words of a question the vocabulary lacks, as written, once each', async () => {
    const answer = await run('answer', ', question: "What is in this PHOTO? this thing"', { maxNewTokens: 3 });
    expect(answer.warnings).toHaveLength(1);
    expect(answer.warnings[0].code).toBe('UNKNOWN_WORDS');
    expect(answer.warnings[0].words).toEqual(['in', 'this', 'PHOTO', 'thing']);
    expect(answer.warnings[0].message).toContain('"PHOTO"');
    // "What" and "is" are in the vocabulary (lower-cased by the tokenizer's normalizer), "?" too.
    const known = await run('answer', ', question: "What color is the circle?"', { maxNewTokens: 3 });
    expect(known.warnings).toEqual([]);
  });

  it('reports unknown words of a prompt; a caption has none', async () => {
    const generate = await run('generate', ', prompt: "a large purple star-shaped"', { maxNewTokens: 3 });
    expect(generate.warnings.map((w) => w.words)).toEqual([['star', '-', 'shaped']]);
    expect((await run('caption', '', { maxNewTokens: 3 })).warnings).toEqual([]);
  });

  it('carries the confidence of the generated tokens, equal to their logprobs summarised, asked for or not', async () => {
    const asked = await run('caption', '', { maxNewTokens: 8, logprobs: true });
    const logprobs = asked.tokens.map((t) => t.logprob!);
    expect(logprobs.length).toBeGreaterThan(0);
    const mean = logprobs.reduce((a, b) => a + b, 0) / logprobs.length;
    expect(asked.confidence.tokens).toBe(logprobs.length);
    expect(asked.confidence.minLogprob).toBe(Math.min(...logprobs));
    expect(asked.confidence.meanLogprob).toBeCloseTo(mean, 12);
    expect(asked.confidence.perplexity).toBeCloseTo(Math.exp(-mean), 10);
    expect(asked.confidence.minLogprob!).toBeLessThanOrEqual(asked.confidence.meanLogprob!);
    expect(asked.confidence.meanLogprob!).toBeLessThanOrEqual(0);
    // Not asked: the tokens carry no logprob, the summary is the same (greedy: the same tokens).
    const plain = await run('caption', '', { maxNewTokens: 8 });
    expect(plain.tokens.map((t) => t.id)).toEqual(asked.tokens.map((t) => t.id));
    expect(plain.tokens.every((t) => t.logprob === null)).toBe(true);
    expect(plain.confidence).toEqual(asked.confidence);
  });

  it('summarises the model distribution, not the sampling one, on a sampled request', async () => {
    const sampled = await run('generate', ', prompt: "a small"', { maxNewTokens: 8, temperature: 3, topK: 5, repetitionPenalty: 2, seed: 11, logprobs: true });
    const logprobs = sampled.tokens.map((t) => t.logprob!);
    expect(logprobs.length).toBeGreaterThan(0);
    expect(sampled.confidence.tokens).toBe(logprobs.length);
    expect(sampled.confidence.minLogprob).toBe(Math.min(...logprobs));
    expect(sampled.confidence.meanLogprob).toBeCloseTo(logprobs.reduce((a, b) => a + b, 0) / logprobs.length, 12);
  });

  it('puts warnings and confidence in the final event of a stream', async () => {
    const query = `subscription($i: String!) { answerStream(image: { base64: $i }, question: "is there a pink circle?", options: { maxNewTokens: 3 }) { delta done generation { ${FIELDS} } } }`;
    const response = await app.yoga.fetch('http://iris.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query, variables: { i: image } }),
    });
    const events = (await readSse(response)) as { data: { answerStream: { done: boolean; generation: Generation | null } } }[];
    const last = events.at(-1)!.data.answerStream;
    expect(last.done).toBe(true);
    expect(last.generation!.warnings.map((w) => [w.code, w.words])).toEqual([['UNKNOWN_WORDS', ['pink']]]);
    expect(last.generation!.confidence.tokens).toBe(last.generation!.tokens.length);
  });
});

describe('confidence of a row', () => {
  it('has null figures when the first token is the end of sequence, and finite ones after tokens', async () => {
    const tokenizer = await TextTokenizer.load(FIXTURES.encoderDecoder);
    const eos = 2;
    const row = new RowDecoder({ promptIds: Int32Array.of(1), options: resolveOptions({ maxNewTokens: 4 }) }, tokenizer, [eos], undefined);
    const logits = new Float32Array(tokenizer.vocabSize);
    logits[eos] = 5;
    expect(row.accept(logits)).toBe(false);
    expect(row.tokens).toEqual([]);
    expect(row.confidence).toEqual({ tokens: 0, meanLogprob: null, minLogprob: null, perplexity: null });

    const other = new RowDecoder({ promptIds: Int32Array.of(1), options: resolveOptions({ maxNewTokens: 2 }) }, tokenizer, [eos], undefined);
    const uniform = new Float32Array(tokenizer.vocabSize); // every token equally likely: log(1/V) each
    other.accept(uniform);
    other.accept(uniform);
    const logUniform = -Math.log(tokenizer.vocabSize);
    expect(other.confidence.tokens).toBe(2);
    expect(other.confidence.meanLogprob).toBeCloseTo(logUniform, 6);
    expect(other.confidence.minLogprob).toBeCloseTo(logUniform, 6);
    expect(other.confidence.perplexity).toBeCloseTo(tokenizer.vocabSize, 4);
  });
});
