// The variants keep the transformers.js naming so that it loads them by dtype: it must run
// them (q8 and fp16, both cache layouts) and agree with Iris on the same variant.
import { AutoModelForVision2Seq, AutoProcessor, RawImage, Tensor, env } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onnxFiles } from '../../src/model/files.ts';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import { FIXTURES, syntheticImage } from '../helpers.ts';
import { quantizedCopy, type QuantizedCopy } from '../quantize/support.ts';

env.allowRemoteModels = false;
env.useFSCache = false;

for (const [name, fixture] of Object.entries(FIXTURES)) {
  describe(`transformers.js on the variants of ${name}`, () => {
    let copy: QuantizedCopy;
    let images: Uint8Array[];
    beforeAll(async () => {
      copy = await quantizedCopy(fixture);
      images = await Promise.all([1, 2, 3].map((seed) => syntheticImage(64, 64, seed)));
    });
    afterAll(() => copy.remove());

    for (const dtype of ['q8', 'fp16'] as const) {
      it(`${dtype}: same greedy caption ids as Iris on the same files`, async () => {
        const processor = await AutoProcessor.from_pretrained(copy.dir, { local_files_only: true });
        const model = await AutoModelForVision2Seq.from_pretrained(copy.dir, { local_files_only: true, dtype, session_options: { intraOpNumThreads: 1 } });
        const pipeline = await ReferenceDecoder.load({ modelDir: copy.dir, threads: 1, ...onnxFiles(dtype) });
        try {
          for (const image of images) {
            const { pixel_values } = await processor(await RawImage.fromBlob(new Blob([image as Uint8Array<ArrayBuffer>])));
            const out = (await model.generate({ pixel_values, max_new_tokens: 10, do_sample: false })) as Tensor;
            const theirs = (out.tolist() as bigint[][])[0].slice(1).map(Number);
            const ours = (await pipeline.generate({ task: 'caption', image, options: { maxNewTokens: 10 } })).tokens.map((t) => t.id);
            expect(theirs.slice(0, ours.length)).toEqual(ours); // theirs may end with the EOS id Iris does not emit
          }
        } finally {
          await Promise.all([pipeline.release(), model.dispose()]);
        }
      });
    }
  });
}
