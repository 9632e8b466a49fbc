// A byte budget shared by every request being read and decoded: a request reserves its
// body's size before a byte of it is read and keeps the reservation until its response
// has been sent (an SSE stream: until its last event), which covers the copies intake and
// the engine make of it (the body, the parsed base64 string, the image bytes, the decoded
// pixels). Requests that do not fit wait in arrival order, their bodies unread (TCP holds
// them back); when the waiting bytes would pass `maxWaitingBytes`, a request is refused at
// once (OVERLOADED). One request larger than the whole budget runs alone.
import { IrisError } from '../../contract/types.ts';

export interface ByteBudget {
  /** Resolves with the release function once `bytes` fit; rejects with OVERLOADED or the signal's reason. */
  acquire(bytes: number, signal?: AbortSignal): Promise<() => void>;
  /** The release function if `bytes` fit now and nothing waits; undefined otherwise (nothing reserved). */
  tryAcquire(bytes: number): (() => void) | undefined;
  /** Bytes reserved now and bytes waiting, for gauges and tests. */
  usage(): { readonly reserved: number; readonly waiting: number };
}

interface Waiter {
  readonly bytes: number;
  readonly grant: () => void;
}

/**
 * `onIdle(bytes)`: called when the last reservation is released and nothing waits, with the
 * bytes that passed through since the budget was last idle (a burst's size).
 */
export function createByteBudget(capacity: number, maxWaitingBytes: number, onIdle?: (bytes: number) => void): ByteBudget {
  let reserved = 0;
  let waitingBytes = 0;
  let passed = 0;
  const queue: Waiter[] = [];

  const fits = (bytes: number): boolean => reserved === 0 || reserved + bytes <= capacity;
  const pump = (): void => {
    while (queue.length > 0 && fits(queue[0].bytes)) queue.shift()?.grant();
  };
  const releaser = (bytes: number): (() => void) => {
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      reserved -= bytes;
      passed += bytes;
      pump();
      if (reserved === 0 && queue.length === 0) {
        const burst = passed;
        passed = 0;
        onIdle?.(burst);
      }
    };
  };

  const clamp = (requested: number): number => Math.min(Math.max(0, requested), capacity);
  const tryAcquire = (requested: number): (() => void) | undefined => {
    const bytes = clamp(requested);
    if (queue.length > 0 || !fits(bytes)) return undefined;
    reserved += bytes;
    return releaser(bytes);
  };

  return {
    usage: () => ({ reserved, waiting: waitingBytes }),
    tryAcquire,
    acquire(requested, signal) {
      const granted = tryAcquire(requested);
      if (granted) return Promise.resolve(granted);
      const bytes = clamp(requested);
      if (waitingBytes + bytes > maxWaitingBytes) {
        return Promise.reject(new IrisError('OVERLOADED', `the server is reading ${reserved} bytes of requests and ${waitingBytes} more are waiting; retry later`));
      }
      signal?.throwIfAborted();
      return new Promise((resolve, reject) => {
        const waiter: Waiter = {
          bytes,
          grant: () => {
            signal?.removeEventListener('abort', onAbort);
            waitingBytes -= bytes;
            reserved += bytes;
            resolve(releaser(bytes));
          },
        };
        const onAbort = (): void => {
          const at = queue.indexOf(waiter);
          if (at < 0) return;
          queue.splice(at, 1);
          waitingBytes -= bytes;
          reject(signal?.reason);
          pump();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        waitingBytes += bytes;
        queue.push(waiter);
      });
    },
  };
}
