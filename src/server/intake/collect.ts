// Handing a burst's memory back: once a burst of large request bodies (at least a whole
// intake budget's worth) has been answered, V8 has the bodies, base64 strings and pixels
// as garbage but sees no reason to collect it while the server is idle, so RSS stays at
// the burst's peak. One full collection, a second after the burst, frees the large
// buffers (their memory is mapped, so it goes straight back to the system).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const DELAY_MS = 1_000;

let collect: (() => void) | undefined;

function collector(): () => void {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  return collect;
}

/** Calls `onIdle`-style: after a burst of at least `threshold` bytes, collect garbage once, shortly after. */
export function collectAfterBursts(threshold: number): (bytes: number) => void {
  let timer: NodeJS.Timeout | undefined;
  return (bytes) => {
    if (bytes < threshold || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      collector()();
    }, DELAY_MS);
    timer.unref();
  };
}
