// Turns a Generator's onDelta callbacks into the async iterator a subscription returns:
// one event per decoded piece, then one final event with the whole Generation. Written by
// hand rather than as an async generator so that `return()` (the client unsubscribed or
// disconnected) aborts the generation at once, even while nothing is being yielded.
import type { GeneratedToken, GenerateHooks, GenerationResult } from '../src/contract/types.ts';
import { anySignal } from '../src/server/any-signal.ts';

export interface GenerationEvent {
  readonly delta: string;
  readonly token: GeneratedToken | null;
  readonly done: boolean;
  readonly generation: GenerationResult | null;
}

type Start = (hooks: GenerateHooks) => Promise<GenerationResult>;

/** `start` gets hooks whose signal fires when the consumer stops early or `signal` fires. */
export function streamGeneration(start: Start, signal: AbortSignal): AsyncIterableIterator<GenerationEvent> {
  const stop = new AbortController();
  const buffered: GenerationEvent[] = [];
  let failure: { error: unknown } | undefined;
  let isFinished = false;
  let isClosed = false;
  let wake: (() => void) | undefined;

  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  start({
    signal: anySignal([signal, stop.signal]),
    onDelta: (d) => {
      buffered.push({ delta: d.text, token: d.token, done: false, generation: null });
      notify();
    },
  }).then(
    (result) => {
      buffered.push({ delta: '', token: null, done: true, generation: result });
      isFinished = true;
      notify();
    },
    (error: unknown) => {
      failure = { error };
      isFinished = true;
      notify();
    },
  );

  const close = (): IteratorResult<GenerationEvent> => {
    isClosed = true;
    stop.abort();
    notify();
    return { value: undefined, done: true };
  };

  const next = async (): Promise<IteratorResult<GenerationEvent>> => {
    while (!isClosed) {
      const event = buffered.shift();
      if (event) return { value: event, done: false };
      if (failure) {
        close();
        throw failure.error;
      }
      if (isFinished) return close();
      await new Promise<void>((resolve) => (wake = resolve));
    }
    return { value: undefined, done: true };
  };

  const iterator: AsyncIterableIterator<GenerationEvent> = {
    next,
    return: async () => close(),
    throw: async (error: unknown) => {
      close();
      throw error;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
