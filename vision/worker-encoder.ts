// The image path (decode → preprocess → encode) in a worker thread. onnxruntime-node runs
// a session synchronously on the thread that calls it, so in-process the vision encoder
// and the decoder take turns on one core; in a worker, images are encoded on another
// core while the engine's thread runs decoder steps. The worker owns its own encoder
// session (one intra-op thread: the decoder's thread needs its core).
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { IrisError, type IrisErrorCode } from '../src/contract/types.ts';
import type { ImageEmbedding } from './encoder.ts';
import type { DecodeLimits } from './image.ts';
import type { ImageBatchEncoder } from './image-loader.ts';
import type { PreprocessorConfig } from './preprocess.ts';

/** What the worker loads: everything structured-cloneable. */
export interface EncodeWorkerInit {
  encoderPath: string;
  size: { height: number; width: number };
  session: ort.InferenceSession.SessionOptions;
  preprocessor: PreprocessorConfig;
  limits: DecodeLimits;
}

export interface EncodeRequest {
  id: number;
  images: Uint8Array[];
}

export type EncodeOutcome = { embedding: ImageEmbedding } | { error: { code: IrisErrorCode | undefined; message: string } };

export type EncodeWorkerMessage = { ready: true } | { failed: string } | { id: number; outcomes: EncodeOutcome[] };

export interface WorkerImageEncoder {
  readonly encodeImages: ImageBatchEncoder;
  release(): Promise<void>;
}

type Pending = { resolve: (outcomes: (ImageEmbedding | Error)[]) => void; reject: (error: Error) => void };

/** Start the worker and wait until its encoder session is loaded. */
export async function startEncodeWorker(init: EncodeWorkerInit): Promise<WorkerImageEncoder> {
  const worker = new Worker(bootstrap(), { eval: true, workerData: init });
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let failure: Error | undefined;
  // Referenced only while a batch is in flight: an idle engine must not keep the process alive.
  const settleRef = (): void => void (pending.size > 0 ? worker.ref() : worker.unref());
  const failAll = (error: Error): void => {
    failure ??= error;
    for (const p of pending.values()) p.reject(failure);
    pending.clear();
    settleRef();
  };
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new IrisError('MODEL_NOT_FOUND', `image worker exited (code ${code}) before it was ready`)));
    worker.once('message', (message: EncodeWorkerMessage) => ('ready' in message ? resolve() : reject(new IrisError('MODEL_NOT_FOUND', 'failed' in message ? message.failed : 'image worker did not start'))));
  }).catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });
  worker.on('message', (message: EncodeWorkerMessage) => {
    if (!('id' in message)) return;
    pending.get(message.id)?.resolve(message.outcomes.map(fromOutcome));
    pending.delete(message.id);
    settleRef();
  });
  worker.on('error', (error) => failAll(error));
  worker.on('exit', (code) => failAll(new Error(`image worker exited (code ${code})`)));
  settleRef();
  const encodeImages: ImageBatchEncoder = (images) => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    const request: EncodeRequest = { id, images: [...images] };
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      settleRef();
      worker.postMessage(request);
    });
  };
  return { encodeImages, release: async () => void (await worker.terminate()) };
}

/**
 * Several workers behind one ImageBatchEncoder: a batch is split into contiguous chunks,
 * one per worker, encoded in parallel and joined in order (the encoder gains nothing
 * from large batches: its convolutions cost the same per image at 1 or 16).
 */
export async function startEncodeWorkers(init: EncodeWorkerInit, count: number): Promise<WorkerImageEncoder> {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`image workers must be an integer >= 1, got ${count}`);
  const started = await Promise.allSettled(Array.from({ length: count }, () => startEncodeWorker(init)));
  const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(workers.map((w) => w.release()));
    throw failed.reason;
  }
  if (count === 1) return workers[0];
  const encodeImages: ImageBatchEncoder = async (images) => {
    const size = Math.ceil(images.length / workers.length);
    const chunks = workers.map((w, i) => ({ w, images: images.slice(i * size, (i + 1) * size) })).filter((c) => c.images.length > 0);
    return (await Promise.all(chunks.map((c) => c.w.encodeImages(c.images)))).flat();
  };
  return { encodeImages, release: async () => void (await Promise.all(workers.map((w) => w.release()))) };
}

function fromOutcome(outcome: EncodeOutcome): ImageEmbedding | Error {
  if ('embedding' in outcome) return outcome.embedding;
  const { code, message } = outcome.error;
  return code ? new IrisError(code, message) : new Error(message);
}

/**
 * The worker's entry as an eval'd script. Compiled (dist/, where this file is .js): import
 * the compiled worker. From the sources: register tsx's loader in the worker, then import
 * the TypeScript module. Workers do not inherit loaders registered with module.register()
 * (bin/iris.js, vitest), and --import flags only reach them when the parent was started
 * with them; registering here works in every case.
 */
function bootstrap(): string {
  if (import.meta.url.endsWith('.js')) return `import(${JSON.stringify(new URL('./encode-worker.js', import.meta.url).href)})`;
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./encode-worker.ts', import.meta.url);
  return `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
}
