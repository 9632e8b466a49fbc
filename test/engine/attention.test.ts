// Attention maps from the engine: asking for them changes no token (alone or batched with
// requests that do not ask), every map is a grid over the image patches summing to 1,
// the maps point at the objects the caption names (the pointing game, on the held-out
// scenes), and the combinations that cannot work are refused with their codes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pointingGame, WORD_KINDS } from '../../src/cli/eval-attention.ts';
import { createEngine } from '../../src/engine/create-engine.ts';
import { readModelFolder } from '../../src/model/folder.ts';
import type { Engine } from '../../src/engine/engine.ts';
import type { GenerationResult } from '../../src/contract/types.ts';
import { FIXTURES, isShippedModelPresent, SHIPPED_MODEL, syntheticImage, writeHeldOut } from '../helpers.ts';
import { workload } from './support.ts';

describe('attention in the engine (tiny fixture)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await createEngine({ modelDir: FIXTURES.encoderDecoder, threads: 1 });
  });
  afterAll(() => engine.release());

  it('gives the same tokens with and without maps, alone and batched with requests that do not ask', async () => {
    const requests = await workload(12);
    const alone: GenerationResult[] = [];
    for (const r of requests) alone.push(await engine.generate(r));
    const mixed = await Promise.all(requests.map((r, i) => engine.generate(i % 2 === 0 ? { ...r, options: { ...r.options, attention: true } } : r)));
    mixed.forEach((result, i) => {
      expect(result.tokens.map((t) => t.id)).toEqual(alone[i].tokens.map((t) => t.id));
      expect(result.tokens.every((t) => (t.attention !== undefined) === (i % 2 === 0))).toBe(true);
    });
  });

  it('maps each token onto the patch grid, per layer and combined, each summing to 1', async () => {
    const result = await engine.generate({ task: 'caption', image: await syntheticImage(80, 80, 3), options: { attention: true, minNewTokens: 3, maxNewTokens: 5 } });
    expect(result.tokens.length).toBeGreaterThanOrEqual(3);
    for (const { attention } of result.tokens) {
      const { rows, cols, weights, layers, imageShare, aggregation } = attention!;
      expect(rows * cols).toBe(result.usage.imageTokens);
      expect(weights).toHaveLength(rows * cols);
      for (const map of [weights, ...layers]) expect(map.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(layers.length).toBeGreaterThan(0);
      expect(imageShare).toBeNull(); // cross-attention attends only to the image
      expect(aggregation).toMatch(/^mean of \d+ decoder layers/); // the fixture has no attention.json: the default
    }
  });

  it('refuses attention with speculative decoding, and on a model without the attentions variant', async () => {
    const image = await syntheticImage(64, 64, 1);
    await expect(engine.generate({ task: 'caption', image, options: { attention: true, speculative: 'ngram' } })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    const gpt2 = await createEngine({ modelDir: FIXTURES.gpt2, threads: 1, imageWorkers: 0 });
    try {
      await expect(gpt2.generate({ task: 'caption', image, options: { attention: true } })).rejects.toMatchObject({ code: 'ATTENTION_UNAVAILABLE' });
      expect((await gpt2.generate({ task: 'caption', image })).text).toBeTypeOf('string');
    } finally {
      await gpt2.release();
    }
  });
});

describe.skipIf(!isShippedModelPresent)('pointing game on shapes-base', () => {
  const work = mkdtempSync(join(tmpdir(), 'iris-pointing-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("the model's map (its attention.json) points at the described object for at least 95 % of color, shape and size words", async () => {
    writeHeldOut(work, 1000);
    const folder = await readModelFolder(SHIPPED_MODEL);
    const engine = await createEngine({ modelDir: SHIPPED_MODEL });
    try {
      const report = await pointingGame(engine, work, folder.attentionAggregation);
      expect(report.defaultAggregation).toBe(JSON.parse(readFileSync(join(SHIPPED_MODEL, 'attention.json'), 'utf8')).aggregation);
      console.log(`pointing game (default ${report.defaultAggregation}):`, JSON.stringify(report.rates[report.defaultAggregation]));
      expect(report.scenes).toBeGreaterThan(500);
      for (const kind of WORD_KINDS) expect(report.rates[report.defaultAggregation][kind], kind).toBeGreaterThanOrEqual(95);
      // A control the game can fail: a single layer misses a word kind badly.
      expect(Math.min(...WORD_KINDS.map((k) => report.rates.last[k]))).toBeLessThan(90);
    } finally {
      await engine.release();
    }
  }, 600_000);
});
