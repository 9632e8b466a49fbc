// The result cache of deterministic requests (issue 17): which requests it keys and which
// it never caches, the local LRU's bytes bound, and on real engines (tiny-random): a
// cached answer identical to a fresh run (tokens, text, finish reason, logprobs, the
// streamed pieces), alone and under concurrent load; seeded sampling cached, unseeded
// never; another option a miss; the Redis tier on a real redis-server shared by two
// engines; Redis down or killed: still the right answers; SSE streaming and /metrics;
// identical requests in flight together sharing one run (single-flight.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import { createEngine } from '../../src/engine/create-engine.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { decodeCachedResult, encodeCachedResult, modelFingerprint, ResultCache, resultKeyOf } from '../../src/engine/result-cache.ts';
import { resolveOptions } from '../../text/sampling/options.ts';
import type { GenerationDelta, GenerationRequest, GenerationResult } from '../../src/contract/types.ts';
import { createRedisStore, type RedisStore } from '../../src/server/redis-store.ts';
import { createEngineApp, gql, type EngineApp } from '../api/support/app.ts';
import { freePort, hasRedis, startRedis, type Redis } from '../scale-out/support.ts';
import { FIXTURES, syntheticImage } from '../helpers.ts';
import { workload } from './support.ts';

const keyOf = (r: GenerationRequest): string | undefined => resultKeyOf(r, resolveOptions(r.options));

/** What must be identical between a cached and a fresh result (timings differ by design). */
function output(r: GenerationResult): unknown {
  return { text: r.text, tokens: r.tokens, finishReason: r.finishReason, usage: r.usage, confidence: r.confidence, warnings: r.warnings, model: r.model };
}

async function generate(engine: Engine, request: GenerationRequest): Promise<{ result: GenerationResult; deltas: GenerationDelta[] }> {
  const deltas: GenerationDelta[] = [];
  const result = await engine.generate(request, { onDelta: (d) => deltas.push(d) });
  return { result, deltas };
}

const engineWith = (options: Parameters<typeof createEngine>[0] = {}): Promise<Engine> =>
  createEngine({ modelDir: FIXTURES.encoderDecoder, modelId: 'tiny', threads: 1, imageWorkers: 0, ...options });

describe('what is cached', () => {
  const image = new Uint8Array([1, 2, 3]);
  it('keys greedy requests and seeded sampling; never unseeded sampling or attention maps', () => {
    const greedy = keyOf({ task: 'caption', image });
    expect(greedy).toMatch(/^[0-9a-f]{64}$/);
    expect(keyOf({ task: 'caption', image, options: { seed: 5 } })).toBe(greedy); // greedy ignores the seed
    expect(keyOf({ task: 'caption', image, options: { temperature: 0.8 } })).toBeUndefined();
    expect(keyOf({ task: 'caption', image, options: { topK: 3 } })).toBeUndefined(); // a warper alone samples
    const seeded = keyOf({ task: 'caption', image, options: { temperature: 0.8, seed: 5 } });
    expect(seeded).toMatch(/^[0-9a-f]{64}$/);
    expect(keyOf({ task: 'caption', image, options: { temperature: 0.8, seed: 6 } })).not.toBe(seeded);
    expect(keyOf({ task: 'caption', image, options: { attention: true } })).toBeUndefined();
  });

  it('any difference in task, text, options or image bytes is another key', () => {
    const keys = [
      keyOf({ task: 'caption', image }),
      keyOf({ task: 'caption', image, options: { maxNewTokens: 5 } }),
      keyOf({ task: 'caption', image, options: { logprobs: true } }),
      keyOf({ task: 'caption', image, options: { stop: ['.'] } }),
      keyOf({ task: 'caption', image: new Uint8Array([1, 2, 4]) }),
      keyOf({ task: 'answer', image, question: 'what?' }),
      keyOf({ task: 'answer', image, question: 'what ?' }),
      keyOf({ task: 'generate', image, prompt: 'a' }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    expect(keyOf({ task: 'caption', image, options: { maxNewTokens: 5 } })).toBe(keys[1]);
  });

  it('round-trips results, non-finite numbers included, and refuses what is not one', () => {
    const result = { text: 'a', tokens: [{ id: 1, text: 'a', logprob: -0.5, top: [{ id: 2, text: 'b', logprob: -Infinity }] }], finishReason: 'eos', usage: { promptTokens: 1, imageTokens: 2, completionTokens: 1 }, timings: {}, model: 'm', warnings: [], confidence: { tokens: 1, meanLogprob: -0.5, minLogprob: -0.5, perplexity: 1.6 } } as unknown as GenerationResult;
    const cached = { result, deltas: [{ text: 'a', token: result.tokens[0] }] };
    expect(decodeCachedResult(encodeCachedResult(cached))).toEqual(cached);
    expect(decodeCachedResult(Buffer.from('{"x":1}'))).toBeUndefined();
    expect(decodeCachedResult(Buffer.from('not json'))).toBeUndefined();
  });

  it('the local tier keeps at most its bytes, least recently used out first', async () => {
    const cached = (text: string) => ({ result: { text, tokens: [] } as unknown as GenerationResult, deltas: [] });
    const size = encodeCachedResult(cached('aaaa')).byteLength;
    const cache = new ResultCache({ maxBytes: 2 * size, prefix: 'p:' });
    cache.set('a', cached('aaaa'));
    cache.set('b', cached('bbbb'));
    expect((await cache.get('a'))?.result.text).toBe('aaaa'); // a is now the most recent
    cache.set('c', cached('cccc'));
    expect(await cache.get('b')).toBeUndefined();
    expect((await cache.get('c'))?.result.text).toBe('cccc');
    expect(cache.stats()).toEqual({ local: { hits: 2, misses: 1, entries: 2, bytes: 2 * size }, shared: undefined });
    const off = new ResultCache({ maxBytes: 0, prefix: 'p:' });
    off.set('a', cached('aaaa'));
    expect(await off.get('a')).toBeUndefined();
  });

  it('the fingerprint follows the model files and the settings given', async () => {
    const a = await modelFingerprint(FIXTURES.encoderDecoder, { speculative: 'off' });
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(await modelFingerprint(FIXTURES.encoderDecoder, { speculative: 'off' })).toBe(a);
    expect(await modelFingerprint(FIXTURES.encoderDecoder, { speculative: 'ngram' })).not.toBe(a);
    expect(await modelFingerprint(FIXTURES.gpt2, { speculative: 'off' })).not.toBe(a);
  });
});

describe('on an engine (tiny-random)', () => {
  let cached: Engine;
  let fresh: Engine;
  let image: Uint8Array;
  beforeAll(async () => {
    [cached, fresh] = await Promise.all([engineWith({ resultCacheBytes: 1 << 20 }), engineWith()]);
    image = await syntheticImage(80, 72, 3);
  });
  afterAll(() => Promise.all([cached?.release(), fresh?.release()]));

  it('answers a repeated greedy request from the cache: the same tokens, text, finish reason, logprobs and streamed pieces as a fresh run', async () => {
    const request: GenerationRequest = { task: 'answer', image, question: 'what color is the circle?', options: { maxNewTokens: 12, topLogprobs: 3 } };
    const first = await generate(cached, request);
    const again = await generate(cached, request);
    const control = await generate(fresh, request);
    expect(first.result.timings.resultCached).toBeUndefined();
    expect(again.result.timings).toMatchObject({ resultCached: true, queueMs: 0, prefillMs: 0, decodeMs: 0, imageEncodeMs: 0 });
    expect(output(again.result)).toEqual(output(first.result));
    expect(output(again.result)).toEqual(output(control.result));
    expect(again.deltas).toEqual(first.deltas);
    expect(again.deltas).toEqual(control.deltas);
    expect(again.result.tokens[0].top).toHaveLength(3);
    expect(again.deltas.length).toBeGreaterThan(0);
    expect(cached.stats().resultCache?.local).toMatchObject({ hits: 1, misses: 1, entries: 1 });
  });

  it('under concurrent load: a batch of cached answers equals the batch that computed them and the uncached engine\'s', async () => {
    const requests = await workload(12);
    const firstRound = await Promise.all(requests.map((r) => generate(cached, r)));
    const before = cached.stats().resultCache!.local.hits;
    const secondRound = await Promise.all(requests.map((r) => generate(cached, r)));
    const control = await Promise.all(requests.map((r) => generate(fresh, r)));
    expect(cached.stats().resultCache!.local.hits - before).toBe(requests.length);
    secondRound.forEach((again, i) => {
      expect(again.result.timings.resultCached).toBe(true);
      expect(output(again.result)).toEqual(output(firstRound[i].result));
      expect(again.deltas).toEqual(firstRound[i].deltas);
      expect(again.result.tokens.map((t) => t.id)).toEqual(control[i].result.tokens.map((t) => t.id));
      expect(again.result.text).toBe(control[i].result.text);
      expect(again.result.finishReason).toBe(control[i].result.finishReason);
      again.result.tokens.forEach((t, j) => expect(Math.abs(t.logprob! - control[i].result.tokens[j].logprob!)).toBeLessThan(1e-4));
    });
  });

  it('caches seeded sampling; never sampling without a seed', async () => {
    const seeded: GenerationRequest = { task: 'caption', image, options: { temperature: 1.5, seed: 11, maxNewTokens: 10 } };
    const first = await generate(cached, seeded);
    const again = await generate(cached, seeded);
    expect(again.result.timings.resultCached).toBe(true);
    expect(output(again.result)).toEqual(output(first.result));
    expect(output((await generate(fresh, seeded)).result)).toEqual(output(first.result));
    const before = cached.stats().resultCache!.local;
    const unseeded: GenerationRequest = { task: 'caption', image, options: { temperature: 1.5, maxNewTokens: 10 } };
    for (let i = 0; i < 3; i++) expect((await cached.generate(unseeded)).timings.resultCached).toBeUndefined();
    expect(cached.stats().resultCache!.local).toMatchObject({ hits: before.hits, misses: before.misses, entries: before.entries }); // not even looked up
  });

  it('a different option, question or image is a miss', async () => {
    const base: GenerationRequest = { task: 'answer', image, question: 'how many shapes are there?', options: { maxNewTokens: 6 } };
    await cached.generate(base);
    expect((await cached.generate(base)).timings.resultCached).toBe(true);
    expect((await cached.generate({ ...base, options: { maxNewTokens: 7 } })).timings.resultCached).toBeUndefined();
    expect((await cached.generate({ ...base, options: { maxNewTokens: 6, repetitionPenalty: 1.2 } })).timings.resultCached).toBeUndefined();
    expect((await cached.generate({ ...base, question: 'how many shapes?' })).timings.resultCached).toBeUndefined();
    expect((await cached.generate({ ...base, image: await syntheticImage(80, 72, 4) })).timings.resultCached).toBeUndefined();
  });

  it('a cancelled run is not cached, and invalid requests fail as before', async () => {
    const request: GenerationRequest = { task: 'caption', image: await syntheticImage(64, 64, 9), options: { maxNewTokens: 30, minNewTokens: 30 } };
    const controller = new AbortController();
    const cancelled = await cached.generate(request, { signal: controller.signal, onDelta: () => controller.abort() }).catch((e: Error) => e);
    expect(cancelled instanceof Error ? (cancelled as { code?: string }).code : (cancelled as GenerationResult).finishReason).toMatch(/CANCELLED|cancelled/);
    expect((await cached.generate(request)).timings.resultCached).toBeUndefined();
    await expect(cached.generate({ task: 'caption', image, options: { maxNewTokens: 0 } })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
  });
});

describe('in-flight de-duplication: identical deterministic requests that arrive together run once', () => {
  let engine: Engine;
  let fresh: Engine;
  let image: Uint8Array;
  /** Rows admitted to the engine (each prefilled once: nothing is preempted at these loads). */
  let admitted = 0;
  beforeAll(async () => {
    [engine, fresh] = await Promise.all([engineWith({ resultCacheBytes: 1 << 20, onStep: (info) => void (admitted += info.numPrefill) }), engineWith()]);
    image = await syntheticImage(76, 68, 12);
  });
  afterAll(() => Promise.all([engine?.release(), fresh?.release()]));

  it('6 identical concurrent requests: one engine run; each caller gets the fresh run\'s pieces and result', async () => {
    const request: GenerationRequest = { task: 'answer', image, question: 'what shape is the blue object?', options: { maxNewTokens: 14, logprobs: true } };
    const before = { admitted, stats: engine.stats().resultCache! };
    const answers = await Promise.all(Array.from({ length: 6 }, () => generate(engine, request)));
    const control = await generate(fresh, request);
    expect(admitted - before.admitted).toBe(1);
    for (const a of answers) {
      expect(output(a.result)).toEqual(output(control.result));
      expect(a.deltas).toEqual(control.deltas);
      expect(a.result.timings.resultCached).toBeUndefined();
    }
    expect(answers.map((a) => a.result.timings.resultShared ?? false)).toEqual([false, true, true, true, true, true]);
    const after = engine.stats().resultCache!;
    expect(after.inflight!.hits - before.stats.inflight!.hits).toBe(5);
    expect(after.inflight!.misses - before.stats.inflight!.misses).toBe(1);
    expect(after.local.misses - before.stats.local.misses).toBe(1); // one lookup for the six
    // Next time, the cache answers.
    expect((await engine.generate(request)).timings.resultCached).toBe(true);
  });

  it('a caller that joins part-way gets the pieces produced before it, then the rest', async () => {
    const request: GenerationRequest = { task: 'caption', image, options: { maxNewTokens: 20, minNewTokens: 20 } };
    const before = admitted;
    let late: Promise<{ result: GenerationResult; deltas: GenerationDelta[] }> | undefined;
    const deltas: GenerationDelta[] = [];
    const first = engine.generate(request, { onDelta: (d) => {
      deltas.push(d);
      if (deltas.length === 5) late = generate(engine, request);
    } });
    const result = await first;
    const joined = await late!;
    expect(admitted - before).toBe(1);
    expect(joined.deltas).toEqual(deltas);
    expect(output(joined.result)).toEqual(output(result));
    expect(joined.result.timings.resultShared).toBe(true);
  });

  it('cancelling one of two leaves the other complete; cancelling both cancels the run (nothing cached)', async () => {
    const request: GenerationRequest = { task: 'generate', image, prompt: 'a small', options: { maxNewTokens: 30, minNewTokens: 30 } };
    const control = await generate(fresh, request);
    const before = admitted;
    const controller = new AbortController();
    const [cancelled, complete] = await Promise.all([
      engine.generate(request, { signal: controller.signal, onDelta: () => controller.abort() }).catch((e: Error) => e),
      generate(engine, request),
    ]);
    expect(admitted - before).toBe(1);
    expect((cancelled as GenerationResult).finishReason).toBe('cancelled');
    expect((cancelled as GenerationResult).text.length).toBeGreaterThan(0);
    expect(control.result.text.startsWith((cancelled as GenerationResult).text)).toBe(true);
    expect(output(complete.result)).toEqual(output(control.result));
    expect(complete.deltas).toEqual(control.deltas);

    const other: GenerationRequest = { ...request, prompt: 'two' };
    const both = new AbortController();
    const runs = [0, 1].map(() => engine.generate(other, { signal: both.signal, onDelta: () => both.abort() }).catch((e: Error) => e));
    const outcomes = await Promise.all(runs);
    for (const o of outcomes) expect(o instanceof Error ? (o as { code?: string }).code : (o as GenerationResult).finishReason).toMatch(/CANCELLED|cancelled/);
    await engine.whenIdle();
    // The shared run was cancelled, not finished for no one: the next identical request runs again.
    const again = await engine.generate(other);
    expect(again.timings.resultCached).toBeUndefined();
    expect(again.tokens).toHaveLength(30);
  });

  it('an error of the shared run reaches every caller', async () => {
    const broken: GenerationRequest = { task: 'caption', image: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]) };
    const before = engine.stats().resultCache!.inflight!.hits;
    const outcomes = await Promise.all(Array.from({ length: 3 }, () => engine.generate(broken).catch((e: Error) => e)));
    for (const o of outcomes) expect(o).toMatchObject({ code: 'BAD_IMAGE' });
    expect(engine.stats().resultCache!.inflight!.hits - before).toBe(2);
  });
});

describe.skipIf(!hasRedis)('the Redis tier (a real redis-server)', () => {
  let redis: Redis;
  const stores: RedisStore[] = [];
  const engines: Engine[] = [];
  let image: Uint8Array;
  const storeFor = async (url: string, wait = true): Promise<RedisStore> => {
    const store = createRedisStore({ redisUrl: url, redisTimeoutMs: 200, redisTtlSeconds: 60, redisMaxValueBytes: 1 << 20 }, { warn: () => undefined });
    stores.push(store);
    for (let i = 0; wait && i < 200 && !store.isReady(); i++) await new Promise((r) => setTimeout(r, 25));
    return store;
  };
  beforeAll(async () => {
    redis = await startRedis();
    image = await syntheticImage(88, 80, 5);
  });
  afterAll(async () => {
    await Promise.all(engines.map((e) => e.release()));
    await Promise.all(stores.map((s) => s.close()));
    await redis?.stop('SIGKILL');
  });

  it('a result computed by one replica is a Redis hit on another, identical, stored under the model and its fingerprint', async () => {
    const [a, b] = await Promise.all([storeFor(redis.url), storeFor(redis.url)]);
    const [one, two] = await Promise.all([engineWith({ resultCacheBytes: 1 << 20, sharedResults: a }), engineWith({ resultCacheBytes: 1 << 20, sharedResults: b })]);
    engines.push(one, two);
    const request: GenerationRequest = { task: 'caption', image, options: { maxNewTokens: 10, logprobs: true } };
    const first = await generate(one, request);
    const client = createClient({ url: redis.url });
    await client.connect();
    for (let i = 0; i < 200 && (await client.keys('iris:res:v1:tiny:*')).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const keys = await client.keys('iris:res:v1:tiny:*');
    const ttl = await client.ttl(keys[0]);
    client.destroy();
    expect(keys).toEqual([expect.stringMatching(/^iris:res:v1:tiny:[0-9a-f]{16}:[0-9a-f]{64}$/)]);
    expect(ttl).toBeGreaterThan(50);
    const second = await generate(two, request);
    expect(second.result.timings.resultCached).toBe(true);
    expect(output(second.result)).toEqual(output(first.result));
    expect(second.deltas).toEqual(first.deltas);
    expect(two.stats().resultCache).toMatchObject({ local: { hits: 0, misses: 1 }, shared: { hits: 1, misses: 0, errors: 0, timeouts: 0 } });
    // Now local on the second engine: Redis is not asked again.
    expect((await two.generate(request)).timings.resultCached).toBe(true);
    expect(two.stats().resultCache).toMatchObject({ local: { hits: 1 }, shared: { hits: 1 } });
  });

  it('Redis down (never there, or killed mid-run): every answer is still right, counted as errors, never an error', async () => {
    const nowhere = await storeFor(`redis://127.0.0.1:${await freePort()}`, false);
    const lonely = await engineWith({ resultCacheBytes: 1 << 20, sharedResults: nowhere });
    const local = await engineWith();
    engines.push(lonely, local);
    const requests = await workload(6);
    const expected = await Promise.all(requests.map((r) => local.generate(r)));
    const got = await Promise.all(requests.map((r) => lonely.generate(r)));
    got.forEach((r, i) => expect(r.tokens.map((t) => t.id)).toEqual(expected[i].tokens.map((t) => t.id)));
    expect(lonely.stats().resultCache!.shared).toMatchObject({ hits: 0, errors: requests.length, writes: 0 });
    // Killed mid-run: a replica on a live Redis keeps answering, right, while it goes away.
    const store = await storeFor(redis.url);
    const engine = await engineWith({ resultCacheBytes: 1 << 20, sharedResults: store });
    engines.push(engine);
    const running = requests.map((r) => engine.generate({ ...r, options: { ...r.options, maxNewTokens: 20 } }));
    await redis.stop('SIGKILL');
    const during = await Promise.all(running);
    const after = await Promise.all(requests.map((r) => engine.generate(r)));
    expect(during.every((r) => r.finishReason !== 'cancelled')).toBe(true);
    after.forEach((r, i) => expect(r.tokens.map((t) => t.id)).toEqual(expected[i].tokens.map((t) => t.id)));
  });
});

describe('through the API: SSE streaming from the cache, /metrics', () => {
  let app: EngineApp;
  beforeAll(async () => {
    app = await createEngineApp({}, undefined, { resultCacheBytes: 1 << 20 });
  });
  afterAll(() => app?.release());

  const STREAM = 'subscription ($i: String!) { captionStream(image: { base64: $i }, options: { maxNewTokens: 8, logprobs: true }) { delta token { id logprob } done generation { text finishReason timings { resultCached } } } }';

  async function stream(png: string): Promise<Array<{ delta: string; token: unknown; done: boolean; generation: { text: string; finishReason: string; timings: { resultCached: boolean } } | null }>> {
    const response = await app.app.yoga.fetch('http://iris.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: STREAM, variables: { i: png } }),
    });
    const text = await response.text();
    return text.split('\n').filter((l) => l.startsWith('data: ') && l.length > 6).map((l) => JSON.parse(l.slice(6))).filter((e) => e.data).map((e) => e.data.captionStream);
  }

  it('a cached stream sends the same events as the fresh one, its last saying resultCached; /metrics counts the tiers', async () => {
    const png = Buffer.from(await syntheticImage(72, 72, 8)).toString('base64');
    const first = await stream(png);
    const again = await stream(png);
    expect(first.length).toBeGreaterThan(2);
    const strip = (events: typeof first) => events.map((e) => ({ ...e, generation: e.generation && { ...e.generation, timings: undefined } }));
    expect(strip(again)).toEqual(strip(first));
    expect(first.at(-1)!.generation!.timings.resultCached).toBe(false);
    expect(again.at(-1)!.generation!.timings.resultCached).toBe(true);
    const metrics = await (await app.app.yoga.fetch('http://iris.test/metrics')).text();
    expect(metrics).toContain('iris_result_cache_total{model="tiny",tier="local",result="hit"} 1');
    expect(metrics).toContain('iris_result_cache_total{model="tiny",tier="local",result="miss"} 1');
    expect(metrics).toMatch(/iris_result_cache_bytes\{model="tiny"\} [1-9]/);
  });

  it('two identical queries at once: one shares the other\'s run (timings.resultShared), counted as tier="inflight" hits', async () => {
    const png = Buffer.from(await syntheticImage(60, 76, 13)).toString('base64');
    const query = 'query ($i: String!) { caption(image: { base64: $i }, options: { maxNewTokens: 20, minNewTokens: 20 }) { text timings { resultCached resultShared } } }';
    // Which of the two reaches the engine first (and leads) is up to intake's timing: order them by the answer.
    type Caption = { text: string; timings: { resultCached: boolean; resultShared: boolean } };
    const both = await Promise.all([0, 1].map(() => gql(app.app, query, { i: png })));
    for (const r of both) expect(r.body.errors).toBeUndefined();
    const [a, b] = both.map((r) => r.body.data!.caption as Caption).sort((x, y) => Number(x.timings.resultShared) - Number(y.timings.resultShared));
    expect(b).toEqual({ text: a.text, timings: { resultCached: false, resultShared: true } });
    expect(a).toMatchObject({ timings: { resultCached: false, resultShared: false } });
    const metrics = await (await app.app.yoga.fetch('http://iris.test/metrics')).text();
    expect(metrics).toContain('iris_result_cache_total{model="tiny",tier="inflight",result="hit"} 1');
    expect(metrics).toMatch(/iris_result_cache_total\{model="tiny",tier="inflight",result="miss"\} [1-9]/);
  });

  it('/v1 says so too: iris_result_cached on a cached answer\'s choice and on a stream\'s finishing chunk, iris_result_shared on a shared one', async () => {
    const url = `data:image/png;base64,${Buffer.from(await syntheticImage(68, 60, 14)).toString('base64')}`;
    const body = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'tiny', max_tokens: 12, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }], ...extra });
    const chat = async (extra?: Record<string, unknown>): Promise<Record<string, unknown>> => {
      const response = await app.app.yoga.fetch('http://iris.test/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(extra) });
      expect(response.status).toBe(200);
      return (await response.json()) as Record<string, unknown>;
    };
    type Choice = { message: { content: string }; iris_result_cached: boolean; iris_result_shared: boolean };
    // Either request may lead; order them by the answer before checking that exactly one shared the other's run.
    const [a, b] = (await Promise.all([chat(), chat()])).map((c) => (c.choices as Choice[])[0]).sort((x, y) => Number(x.iris_result_shared) - Number(y.iris_result_shared));
    expect([a.iris_result_cached, b.iris_result_cached]).toEqual([false, false]);
    expect([a.iris_result_shared, b.iris_result_shared]).toEqual([false, true]);
    expect(b.message.content).toBe(a.message.content);
    const again = (((await chat()).choices) as Choice[])[0];
    expect(again).toMatchObject({ iris_result_cached: true, iris_result_shared: false, message: { content: a.message.content } });
    const streamed = await app.app.yoga.fetch('http://iris.test/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: body({ stream: true }) });
    const chunks = (await streamed.text()).split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)) as { choices: Array<{ delta: { content?: string }; finish_reason: string | null; iris_result_cached?: boolean }> });
    const finishing = chunks.find((c) => c.choices[0]?.finish_reason);
    expect(finishing?.choices[0].iris_result_cached).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(a.message.content);
  });
});
