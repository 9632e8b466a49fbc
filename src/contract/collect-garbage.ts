// A full garbage collection on request, in any thread. Each thread (the main one, each
// image worker) has its own V8 heap, and an idle one sees no reason to collect: after a
// burst of large images its dead buffers would stay mapped until it next allocates. The
// main thread collects its own and asks the others over a BroadcastChannel.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BroadcastChannel } from 'node:worker_threads';

const CHANNEL = 'iris:collect-garbage';

let gc: (() => void) | undefined;

/** One full collection of this thread's heap, now. */
export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

/** Asks every other thread that listens (collectWhenAsked) to collect its garbage; it does so in its own time. */
export function askThreadsToCollect(): void {
  const channel = new BroadcastChannel(CHANNEL);
  channel.postMessage('collect');
  channel.close();
}

/** In a worker thread: collect garbage whenever another thread asks. Does not keep the thread alive. */
export function collectWhenAsked(): void {
  const channel = new BroadcastChannel(CHANNEL);
  channel.unref();
  channel.onmessage = () => collectGarbage();
}
