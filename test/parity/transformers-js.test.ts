// Iris against transformers.js (offline, same onnxruntime-node) on the same folders and
// images: bit-exact preprocessing and identical greedy tokens.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoModelForVision2Seq, AutoProcessor, RawImage, Tensor, env } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.ts';
import type { Engine } from '../../src/engine/engine.ts';
import type { GenerationRequest } from '../../src/contract/types.ts';
import { decodeImage } from '../../vision/image.ts';
import { parsePreprocessorConfig, preprocessImage } from '../../vision/preprocess.ts';
import { PARITY_FOLDERS, syntheticImage } from '../helpers.ts';

env.allowRemoteModels = false;
env.useFSCache = false;

type Processor = Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>;
type Model = Awaited<ReturnType<typeof AutoModelForVision2Seq.from_pretrained>>;

async function images(): Promise<Uint8Array[]> {
  return Promise.all([
    syntheticImage(128, 128, 1, 'png'),
    syntheticImage(64, 64, 2, 'jpeg'),
    syntheticImage(256, 256, 3, 'webp'),
    syntheticImage(50, 77, 4, 'png'), // not square, not a multiple of the input size
  ]);
}

async function referenceIds(processor: Processor, model: Model, image: Uint8Array, promptIds: Int32Array, maxNewTokens: number): Promise<number[]> {
  const { pixel_values } = await processor(await RawImage.fromBlob(new Blob([image as Uint8Array<ArrayBuffer>])));
  const decoder_input_ids = new Tensor('int64', BigInt64Array.from(promptIds, (v) => BigInt(v)), [1, promptIds.length]);
  const out = (await model.generate({ pixel_values, decoder_input_ids, max_new_tokens: maxNewTokens, do_sample: false })) as Tensor;
  return (out.tolist() as bigint[][])[0].slice(promptIds.length).map(Number);
}

for (const [name, dir] of Object.entries(PARITY_FOLDERS)) {
  describe(`Iris vs transformers.js: ${name}`, () => {
    let engine: Engine;
    let processor: Processor;
    let model: Model;
    beforeAll(async () => {
      engine = await createEngine({ modelDir: dir, threads: 1 });
      processor = await AutoProcessor.from_pretrained(dir, { local_files_only: true });
      model = await AutoModelForVision2Seq.from_pretrained(dir, { local_files_only: true, dtype: 'fp32' });
    });
    afterAll(async () => {
      await engine.release();
      await model.dispose();
    });

    it('preprocesses bit-exactly like the transformers.js processor', async () => {
      for (const image of await images()) {
        const ours = await preprocessImage(await decodeImage(image, { maxPixels: 1e6 }), engine.model.folder.preprocessor);
        const { pixel_values } = await processor(await RawImage.fromBlob(new Blob([image as Uint8Array<ArrayBuffer>])));
        const { height, width } = engine.model.folder.preprocessor;
        expect(pixel_values.dims).toEqual([1, 3, height, width]);
        expect(Buffer.from(ours.buffer).equals(Buffer.from((pixel_values.data as Float32Array).buffer))).toBe(true);
      }
    });

    it('follows preprocessor_config.json resample modes (nearest, bicubic) bit-exactly too', async () => {
      const tmp = await mkdtemp(join(tmpdir(), 'iris-pre-'));
      try {
        for (const resample of [0, 3]) {
          await cp(join(dir, 'preprocessor_config.json'), join(tmp, 'preprocessor_config.json'));
          const raw = JSON.parse(await readFile(join(tmp, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;
          await writeFile(join(tmp, 'preprocessor_config.json'), JSON.stringify({ ...raw, resample }));
          const reference = await AutoProcessor.from_pretrained(tmp, { local_files_only: true });
          const config = parsePreprocessorConfig({ ...raw, resample });
          for (const image of await images()) {
            const ours = await preprocessImage(await decodeImage(image, { maxPixels: 1e6 }), config);
            const { pixel_values } = await reference(await RawImage.fromBlob(new Blob([image as Uint8Array<ArrayBuffer>])));
            expect(Buffer.from(ours.buffer).equals(Buffer.from((pixel_values.data as Float32Array).buffer))).toBe(true);
          }
        }
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    });

    it('generates the same greedy tokens for caption, answer and generate', async () => {
      const all = await images();
      const requests: GenerationRequest[] = all.flatMap((image) => [
        { task: 'caption', image, options: { maxNewTokens: 12 } },
        { task: 'answer', image, question: 'how many shapes are there?', options: { maxNewTokens: 12 } },
        { task: 'generate', image, prompt: 'a small blue', options: { maxNewTokens: 12 } },
      ]);
      for (const request of requests) {
        const ours = await engine.generate(request);
        const promptIds = engine.model.tokenizer.encode(request.question ? `<question> ${request.question} <answer>` : request.prompt ?? '');
        const reference = await referenceIds(processor, model, request.image, Int32Array.from([1, ...promptIds]), 12);
        const eos = engine.model.folder.ids.eos;
        const cut = reference.findIndex((id) => eos.includes(id));
        expect(ours.tokens.map((t) => t.id)).toEqual(cut < 0 ? reference : reference.slice(0, cut));
      }
    });
  });
}
