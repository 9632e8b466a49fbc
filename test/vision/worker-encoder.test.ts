// The image path in a worker thread gives exactly the embeddings of the in-process path,
// keeps per-image errors per image (with their codes), and stops when released.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelFolder } from '../../src/model/folder.ts';
import { encoderPathOf, sessionOptionsOf } from '../../src/model/load.ts';
import { VisionEncoder } from '../../vision/encoder.ts';
import { encodeInProcess, type ImageBatchEncoder } from '../../vision/image-loader.ts';
import { startEncodeWorker, startEncodeWorkers, type EncodeWorkerInit, type WorkerImageEncoder } from '../../vision/worker-encoder.ts';
import { FIXTURES, syntheticImage } from '../helpers.ts';

const LIMITS = { maxPixels: 1_000_000 };

describe('image worker', () => {
  let worker: WorkerImageEncoder;
  let inProcess: ImageBatchEncoder;
  let encoder: VisionEncoder;
  let init: EncodeWorkerInit;

  beforeAll(async () => {
    const folder = await readModelFolder(FIXTURES.encoderDecoder);
    init = {
      encoderPath: encoderPathOf(folder, {}),
      size: { height: folder.preprocessor.height, width: folder.preprocessor.width },
      session: sessionOptionsOf({ threads: 1 }),
      preprocessor: folder.preprocessor,
      limits: LIMITS,
    };
    worker = await startEncodeWorker(init);
    encoder = await VisionEncoder.load(init.encoderPath, init.size, init.session);
    inProcess = encodeInProcess({ encoder, preprocessor: folder.preprocessor, limits: LIMITS });
  });

  afterAll(async () => {
    await encoder.release();
  });

  it('encodes a batch to the same embeddings as this thread, errors staying per image', async () => {
    const images = [await syntheticImage(70, 50, 1), new Uint8Array([1, 2, 3]), await syntheticImage(64, 64, 2, 'jpeg')];
    const [fromWorker, here] = await Promise.all([worker.encodeImages(images), inProcess(images)]);
    expect(fromWorker[1]).toMatchObject({ name: 'IrisError', code: 'BAD_IMAGE' });
    for (const i of [0, 2]) {
      const [a, b] = [fromWorker[i], here[i]];
      if (a instanceof Error || b instanceof Error) throw new Error(`image ${i} failed`);
      expect([a.numPatches, a.hiddenSize]).toEqual([b.numPatches, b.hiddenSize]);
      expect(Array.from(a.data)).toEqual(Array.from(b.data));
    }
  });

  it('answers concurrent batches each with its own results', async () => {
    const [a, b] = await Promise.all([1, 2].map(async (seed) => worker.encodeImages([await syntheticImage(40, 40, seed)])));
    const [ea, eb] = [a[0], b[0]];
    if (ea instanceof Error || eb instanceof Error) throw new Error('encode failed');
    expect(Array.from(ea.data)).not.toEqual(Array.from(eb.data));
  });

  it('a pool splits a batch across its workers and keeps the order', async () => {
    const pool = await startEncodeWorkers(init, 2);
    try {
      const images = await Promise.all([1, 2, 3].map((seed) => syntheticImage(48, 48, seed)));
      const [pooled, here] = await Promise.all([pool.encodeImages(images), inProcess(images)]);
      expect(pooled.map((e) => (e instanceof Error ? e : Array.from(e.data)))).toEqual(here.map((e) => (e instanceof Error ? e : Array.from(e.data))));
    } finally {
      await pool.release();
    }
    await expect(startEncodeWorkers(init, 0)).rejects.toThrow(/integer >= 1/);
  });

  it('rejects batches after release', async () => {
    await worker.release();
    await expect(worker.encodeImages([await syntheticImage(40, 40, 3)])).rejects.toThrow(/image worker exited/);
  });
});
