// A request's life around the batch: streaming, overload, cancellation (while running,
// waiting or loading its image), bad input. Whatever happens, the others keep their
// tokens and nothing stays behind in the KV budget or the embedding cache.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentHash, EmbeddingCache } from '../../vision/embedding-cache.ts';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import type { GenerationRequest, GenerationResult } from '../../src/contract/types.ts';
import { FIXTURES } from '../helpers.ts';
import { harness, workload, type Harness } from './support.ts';

const dir = FIXTURES.encoderDecoder;

function ids(outcome: GenerationResult | Error): number[] {
  if (outcome instanceof Error) throw outcome;
  return outcome.tokens.map((t) => t.id);
}

describe('engine lifecycle', () => {
  let pipeline: ReferenceDecoder;
  let requests: GenerationRequest[];
  let alone: GenerationResult[];
  let cache: EmbeddingCache;
  let h: Harness;
  beforeAll(async () => {
    pipeline = await ReferenceDecoder.load({ modelDir: dir, threads: 1 });
    requests = (await workload(8)).map((r) => ({ ...r, options: { ...r.options, minNewTokens: 12, maxNewTokens: 16 } }));
    alone = [];
    for (const r of requests) alone.push(await pipeline.generate(r));
    cache = new EmbeddingCache(1 << 20);
    h = await harness({ modelDir: dir, maxBatchSize: 4, maxQueued: 4, embeddingCache: cache });
  });
  afterAll(async () => {
    await Promise.all([pipeline.release(), h.engine.release()]);
  });

  async function expectNoTrace(): Promise<void> {
    await h.engine.whenIdle();
    expect(h.engine.stats()).toMatchObject({ queueDepth: 0, batchSize: 0, kvUsedTokens: 0 });
    expect(h.steps.at(-1)?.kvCachedTokens).toBe(0);
    for (const r of requests) expect(cache.refCount(contentHash(r.image))).toBe(0);
  }

  it('streams deltas whose concatenation is the final text', async () => {
    const deltas: string[][] = requests.slice(0, 3).map(() => []);
    const results = await Promise.all(requests.slice(0, 3).map((r, i) => h.engine.generate(r, { onDelta: (d) => deltas[i].push(d.text) })));
    results.forEach((result, i) => {
      expect(deltas[i].join('')).toBe(result.text);
      expect(result.tokens.map((t) => t.id)).toEqual(ids(alone[i]));
      expect(result.usage).toMatchObject({ promptTokens: alone[i].usage.promptTokens, imageTokens: 64, completionTokens: result.tokens.length });
    });
    await expectNoTrace();
  });

  it('answers OVERLOADED beyond the waiting bound, without harming the requests already in', async () => {
    const outcomes = await Promise.all(requests.map((r) => h.engine.generate(r).catch((e: Error) => e)));
    const refused = outcomes.filter((o) => o instanceof Error);
    expect(refused.length).toBe(requests.length - 4);
    for (const o of refused) expect(o).toMatchObject({ code: 'OVERLOADED' });
    outcomes.slice(0, 4).forEach((o, i) => expect(ids(o)).toEqual(ids(alone[i])));
    await expectNoTrace();
  });

  it('a request cancelled mid-decode returns its partial text; the others are unchanged; no trace left', async () => {
    const controller = new AbortController();
    let seen = 0;
    const outcomes = await h.arrive(requests.slice(0, 3), [0, 0, 2], (i) =>
      i === 1 ? { signal: controller.signal, onDelta: () => (++seen === 4 ? controller.abort() : undefined) } : {},
    );
    const cancelled = outcomes[1] as GenerationResult;
    expect(cancelled.finishReason).toBe('cancelled');
    expect(cancelled.tokens.length).toBe(4);
    expect(ids(cancelled)).toEqual(ids(alone[1]).slice(0, 4));
    expect(ids(outcomes[0])).toEqual(ids(alone[0]));
    expect(ids(outcomes[2])).toEqual(ids(alone[2]));
    await expectNoTrace();
  });

  it('cancelled while its image loads, or while waiting for a full batch: CANCELLED, and nothing held', async () => {
    const early = new AbortController();
    const waiting = new AbortController();
    const late: Promise<GenerationResult | Error>[] = [];
    let seen = 0;
    const onDelta = (): void => {
      seen++;
      if (seen === 1) {
        // The batch (4 rows) fills up with this one; the next one has to wait.
        late.push(h.engine.generate(requests[3]).catch((e: Error) => e));
        late.push(h.engine.generate(requests[5], { signal: waiting.signal }).catch((e: Error) => e));
      }
      if (seen === 3) waiting.abort();
    };
    const first = [
      h.engine.generate(requests[0], { onDelta }),
      h.engine.generate(requests[1]),
      h.engine.generate(requests[2]),
      h.engine.generate(requests[4], { signal: early.signal }), // aborted before its image is encoded
    ].map((p) => p.catch((e: Error) => e));
    early.abort();
    const outcomes = await Promise.all(first);
    const [fourth, fifth] = await Promise.all(late);
    expect(ids(outcomes[0])).toEqual(ids(alone[0]));
    expect(ids(outcomes[1])).toEqual(ids(alone[1]));
    expect(ids(outcomes[2])).toEqual(ids(alone[2]));
    expect(ids(fourth)).toEqual(ids(alone[3]));
    expect(outcomes[3]).toMatchObject({ code: 'CANCELLED' });
    expect(Math.max(...h.steps.map((s) => s.numDecode + s.numPrefill))).toBe(4);
    expect(fifth).toMatchObject({ code: 'CANCELLED' });
    await new Promise((r) => setTimeout(r, 20)); // a late image load releases its lease at once
    await expectNoTrace();
    await expect(h.engine.generate(requests[0], { signal: early.signal })).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('bad input fails alone: a broken image or invalid options next to good requests', async () => {
    const broken = { ...requests[1], image: new Uint8Array([1, 2, 3, 4]) };
    const invalid = { ...requests[2], options: { topP: 2 } };
    const outcomes = await Promise.all([requests[0], broken, invalid].map((r) => h.engine.generate(r).catch((e: Error) => e)));
    expect(ids(outcomes[0])).toEqual(ids(alone[0]));
    expect(outcomes[1]).toMatchObject({ code: expect.stringMatching(/BAD_IMAGE|UNSUPPORTED_IMAGE_FORMAT/) });
    expect(outcomes[2]).toMatchObject({ code: 'INVALID_OPTIONS' });
    await expectNoTrace();
  });
});
