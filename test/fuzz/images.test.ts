// Property-based fuzzing of image bytes through the engine that serves `npm start`
// (tiny-random): valid images with bytes flipped, truncated or spliced, and arbitrary
// bytes behind real magic numbers. Each answer is a caption or a documented image code,
// never an internal error; the engine then captions a clean image.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, createEngineApp, gql, type EngineApp } from '../api/support/app.ts';
import { sceneAs, scenePng } from '../api/support/images.ts';
import { DOCUMENTED } from './support.ts';

const RUNS = { numRuns: Number(process.env.IRIS_FUZZ_RUNS ?? 200), interruptAfterTimeLimit: Number(process.env.IRIS_FUZZ_MS ?? 10_000) };
const CAPTION = 'query($i: ImageInput!) { caption(image: $i, options: { maxNewTokens: 2 }) { text } }';
const MAGIC = [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], [0xff, 0xd8, 0xff], [0x47, 0x49, 0x46, 0x38, 0x39, 0x61], [0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50], [0x49, 0x49, 0x2a, 0], [0x42, 0x4d]];

describe('fuzz: image bytes', () => {
  let engine: EngineApp;
  let samples: Buffer[];
  beforeAll(async () => {
    engine = await createEngineApp({ models: { imageWorkers: 0 } });
    samples = [await scenePng(), await sceneAs('jpeg'), await sceneAs('webp')];
  });
  afterAll(() => engine.release());

  it('mutated images and arbitrary bytes behind magic numbers', async () => {
    const mutated = fc.tuple(fc.nat(2), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 8 }), fc.option(fc.nat()), fc.option(fc.uint8Array({ maxLength: 64 }))).map(([which, flips, cut, splice]) => {
      const bytes = Buffer.from(samples[which]);
      for (const [at, value] of flips) bytes[at % bytes.length] = value;
      const kept = cut === null ? bytes : bytes.subarray(0, cut % bytes.length);
      return splice === null ? kept : Buffer.concat([kept.subarray(0, kept.length >> 1), splice, kept.subarray(kept.length >> 1)]);
    });
    const magic = fc.tuple(fc.constantFrom(...MAGIC), fc.uint8Array({ maxLength: 256 })).map(([head, tail]) => Buffer.concat([Buffer.from(head), tail]));
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, magic), async (bytes) => {
        const res = await gql(engine.app, CAPTION, { i: { base64: bytes.toString('base64') } });
        const context = `${bytes.subarray(0, 24).toString('hex')}… (${bytes.length} bytes) -> ${JSON.stringify(res.body).slice(0, 300)}`;
        expect(res.status, context).toBe(200);
        for (const code of codes(res)) {
          expect(code, context).not.toBe('INTERNAL_SERVER_ERROR');
          expect(DOCUMENTED.has(code ?? '(no code)'), context).toBe(true);
        }
      }),
      RUNS,
    );
    const clean = await gql(engine.app, CAPTION, { i: { base64: samples[0].toString('base64') } });
    expect(clean.body.errors).toBeUndefined();
  }, 60_000);
});
