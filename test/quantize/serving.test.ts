// Variants behind the service: --dtype picks the files, the models query reports it, the
// continuous-batching engine (float16 pasts padded and joined across rows) gives what the
// single-request pipeline gives, and the CLI quantizes and runs a folder.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfig, createEngineConfig } from '../../src/config/config.ts';
import { loadConfig } from '../../src/config/settings.ts';
import { createEngine } from '../../src/engine/create-engine.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { createIrisApp } from '../../src/server/app.ts';
import { createEngineLoader } from '../../src/server/load-models.ts';
import { onnxFiles } from '../../src/model/files.ts';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import type { GenerationRequest, GenerationResult } from '../../src/contract/types.ts';
import { gql } from '../api/support/app.ts';
import { FIXTURES, ROOT, syntheticImage } from '../helpers.ts';
import { quantizedCopy, type QuantizedCopy } from './support.ts';

describe('--dtype in configuration', () => {
  it('applies to models that name no dtype; an explicit id=dir:dtype wins', () => {
    const config = loadConfig(['--dtype', 'q8', '--model', 'a=dir-a', '--model', 'b=dir-b:fp16'], {});
    expect(config.models.specs.map((s) => s.dtype)).toEqual(['q8', 'fp16']);
    expect(loadConfig([], { IRIS_DTYPE: 'fp16' }).models.specs[0].dtype).toBe('fp16'); // the shipped model too
    expect(() => loadConfig(['--dtype', 'fp8'], {})).toThrow(/models.dtype must be one of/);
  });
});

describe('variants served by the engine', () => {
  let copy: QuantizedCopy;
  let requests: GenerationRequest[];
  beforeAll(async () => {
    copy = await quantizedCopy(FIXTURES.encoderDecoder);
    const images = await Promise.all([1, 2, 3].map((seed) => syntheticImage(64, 64, seed)));
    requests = images.flatMap((image, i): GenerationRequest[] => [
      { task: 'caption', image, options: { maxNewTokens: 6 + i } },
      { task: 'answer', image, question: 'what color is the circle?', options: { maxNewTokens: 4 + 2 * i } },
    ]);
  });
  afterAll(() => copy.remove());

  it('models reports each model\'s dtype, and every variant answers', async () => {
    const config = createConfig({ models: { dtype: 'fp16', specs: [{ id: 'full', dir: copy.dir, dtype: 'fp32' }, { id: 'q8', dir: copy.dir, dtype: 'q8' }, { id: 'half', dir: copy.dir }] } });
    const engines: Engine[] = [];
    const load = createEngineLoader({ engine: createEngineConfig({ maxPixels: 1e7, maxQueued: 8, maxBatchSize: 4 }), onEngine: (_, e) => engines.push(e) });
    const app = createIrisApp({ config, load });
    await app.registry.loaded;
    const res = await gql(app, '{ models { id dtype ready } }');
    expect(res.body.data?.models).toEqual([{ id: 'full', dtype: 'fp32', ready: true }, { id: 'q8', dtype: 'q8', ready: true }, { id: 'half', dtype: 'fp16', ready: true }]);
    const image = Buffer.from(requests[0].image).toString('base64');
    for (const model of ['q8', 'half']) {
      const caption = await gql(app, `query($i: String!) { caption(image: { base64: $i }, model: "${model}", options: { maxNewTokens: 4 }) { model usage { completionTokens } } }`, { i: image });
      expect(caption.body.errors).toBeUndefined();
      expect(caption.body.data?.caption).toMatchObject({ model, usage: { completionTokens: 4 } });
    }
    await Promise.all(engines.map((e) => e.release()));
  });

  // q8 too: its activations are quantized per row, so batch-mates do not change a row.
  for (const dtype of ['fp16', 'q8'] as const) {
    it(`${dtype}: concurrent requests on the engine decode as they do alone in the pipeline`, async () => {
      const pipeline = await ReferenceDecoder.load({ modelDir: copy.dir, threads: 1, ...onnxFiles(dtype) });
      const engine = await createEngine({ modelDir: copy.dir, threads: 1, maxBatchSize: 4, ...onnxFiles(dtype) });
      try {
        const alone: GenerationResult[] = [];
        for (const r of requests) alone.push(await pipeline.generate(r));
        const together = await Promise.all(requests.map((r) => engine.generate(r)));
        expect(together.map((r) => r.tokens.map((t) => t.id))).toEqual(alone.map((r) => r.tokens.map((t) => t.id)));
      } finally {
        await Promise.all([pipeline.release(), engine.release()]);
      }
    });
  }
});

describe('iris quantize / --dtype on the command line', () => {
  const run = promisify(execFile);
  const iris = (args: string[]) => run(process.execPath, [join(ROOT, 'bin/iris.js'), ...args], { env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  let copy: QuantizedCopy;
  beforeAll(async () => {
    copy = await quantizedCopy(FIXTURES.gpt2);
    await writeFile(join(copy.dir, 'scene.png'), await syntheticImage(64, 64, 4));
  });
  afterAll(() => copy.remove());

  it('rewrites the variants, then captions with each dtype', async () => {
    const { stdout } = await iris(['quantize', copy.dir, '--dtype', 'q8', '--json']);
    const reports = stdout.trim().split('\n').map((l) => JSON.parse(l) as { dtype: string; outputBytes: number; sourceBytes: number });
    expect(reports.map((r) => r.dtype)).toEqual(['q8', 'q8']); // decoder and encoder; fp16 not asked for
    for (const dtype of ['q8', 'fp16']) {
      const out = await iris(['caption', join(copy.dir, 'scene.png'), '--model', copy.dir, '--dtype', dtype, '--max-new-tokens', '3', '--json']);
      expect(JSON.parse(out.stdout)).toMatchObject({ usage: { completionTokens: 3 } });
    }
  });

  it('says how to make a missing variant', async () => {
    const error = await iris(['caption', join(copy.dir, 'scene.png'), '--model', FIXTURES.gpt2, '--dtype', 'fp16']).catch((e: { stderr: string }) => e);
    expect((error as { stderr: string }).stderr).toMatch(/_fp16\.onnx \(make the q8\/fp16 variants with: iris quantize/);
  });
});
