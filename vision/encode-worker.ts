// Worker-thread entry of worker-encoder.ts: load the encoder session, then answer each
// batch of image bytes with embeddings (their buffers transferred, not copied) or errors.
import { parentPort, workerData } from 'node:worker_threads';
import { collectWhenAsked } from '../src/contract/collect-garbage.ts';
import { IrisError } from '../src/contract/types.ts';
import { VisionEncoder } from './encoder.ts';
import { encodeInProcess, type ImageBatchEncoder } from './image-loader.ts';
import type { EncodeOutcome, EncodeRequest, EncodeWorkerInit, EncodeWorkerMessage } from './worker-encoder.ts';

const port = parentPort;
if (!port) throw new Error('encode-worker.ts runs in a worker thread (see worker-encoder.ts)');
const post = (message: EncodeWorkerMessage, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

async function load(init: EncodeWorkerInit): Promise<ImageBatchEncoder> {
  const encoder = await VisionEncoder.load(init.encoderPath, init.size, init.session);
  return encodeInProcess({ encoder, preprocessor: init.preprocessor, limits: init.limits });
}

function toOutcome(result: Awaited<ReturnType<ImageBatchEncoder>>[number]): EncodeOutcome {
  if (!(result instanceof Error)) return { embedding: result };
  return { error: { code: result instanceof IrisError ? result.code : undefined, message: result.message } };
}

try {
  const encodeImages = await load(workerData as EncodeWorkerInit);
  port.on('message', (request: EncodeRequest) => {
    void encodeImages(request.images)
      .catch((err: unknown) => request.images.map(() => (err instanceof Error ? err : new Error(String(err)))))
      .then((results) => {
        const outcomes = results.map(toOutcome);
        const buffers = results.flatMap((r) => (r instanceof Error ? [] : [r.data.buffer as ArrayBuffer]));
        post({ id: request.id, outcomes }, buffers);
      });
  });
  // After a burst of large images the main thread asks (src/server/memory/release.ts): an
  // idle worker would otherwise keep its dead image copies and pixels mapped.
  collectWhenAsked();
  post({ ready: true });
} catch (err) {
  post({ failed: err instanceof Error ? err.message : String(err) });
}
