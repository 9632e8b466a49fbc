// Turns a Generator's onDelta callbacks into the async iterator a subscription returns:
// events carrying the decoded pieces in order, then one final event with the whole
// Generation. Written by hand rather than as an async generator so that `return()` (the
// client unsubscribed or disconnected) aborts the generation at once, even while nothing
// is being yielded.
//
// Coalescing: every event costs a subscription execution, a serialisation and a socket
// write, whatever its size, so pieces are merged when that loses nothing the consumer
// reads. With `coalesce`, the pieces waiting when the consumer asks for the next event go
// out as one event (a slow reader gets fewer, larger events), and after an event the next
// one waits until `intervalMs` has passed since it (the first piece and the end are never
// held back). Under load the interval grows with the streams open at once (× open/8 past
// 8 open), so the events' cost stays bounded while the decode steps' rows grow. Every
// piece still arrives, in order: an event's delta is the concatenation of its pieces and
// `tokens` lists their tokens.
import type { GeneratedToken, GenerateHooks, GenerationResult } from '../src/contract/types.ts';
import { anySignal } from '../src/server/any-signal.ts';
import type { Corkable } from './generation.ts';

export interface GenerationEvent {
  readonly delta: string;
  /** The last piece's token (the only one unless pieces were merged); null on the final event. */
  readonly token: GeneratedToken | null;
  /** Every piece's token, in order (empty on the final event). */
  readonly tokens: readonly GeneratedToken[];
  readonly done: boolean;
  readonly generation: GenerationResult | null;
}

export interface StreamOptions {
  /**
   * The response the events are written to. Corked from the start until the first event
   * is handed out (or HEAD_HOLD_MS have passed), so the headers go out with it; and corked
   * again when the generation ends, so its last pieces, the final event, the protocol's
   * completion and the response's end leave in one write. Each hold is let go by the end
   * or on the next turn of the event loop. Each write to a loopback socket cost about
   * 0.17 ms of the main thread at one client.
   */
  readonly output?: Corkable;
  /** Merge pieces into fewer events (see above); off: one event per piece. */
  readonly coalesce?: boolean;
  /** With coalesce: the least time between two events carrying pieces, in ms (0: merge only what waits). */
  readonly intervalMs?: number;
}

type Start = (hooks: GenerateHooks) => Promise<GenerationResult>;

/** Paced streams open in this process (not yet ended or closed); see LOAD_STREAMS. */
let openPaced = 0;
/** Past this many paced streams open at once, each one's interval grows in proportion. */
const LOAD_STREAMS = 8;

/** The interval after an event of a paced stream, given how many are open. */
export function pacedIntervalMs(intervalMs: number, open: number): number {
  return open > LOAD_STREAMS ? (intervalMs * open) / LOAD_STREAMS : intervalMs;
}

/** Most time the headers wait for the first event: a client still learns soon that its request was taken. */
export const HEAD_HOLD_MS = 1000;

/** Cork `output` until its end (which flushes it whole) or the next turn of the event loop. */
function holdTheEnd(output: Corkable | undefined): void {
  if (!output || output.writableEnded) return;
  output.cork();
  setImmediate(() => letGo(output));
}

/** Cork `output` until release() (then the next turn of the event loop, once the event handed out is written), HEAD_HOLD_MS at most. */
function holdTheStart(output: Corkable | undefined): { release(): void } {
  if (!output || output.writableEnded) return { release: () => undefined };
  output.cork();
  let isHeld = true;
  const release = (): void => {
    if (!isHeld) return;
    isHeld = false;
    clearTimeout(timeout);
    setImmediate(() => letGo(output));
  };
  const timeout = setTimeout(release, HEAD_HOLD_MS);
  timeout.unref();
  return { release };
}

function letGo(output: Corkable): void {
  if (!output.writableEnded) output.uncork();
}

/** `start` gets hooks whose signal fires when the consumer stops early or `signal` fires. */
export function streamGeneration(start: Start, signal: AbortSignal, options: StreamOptions = {}): AsyncIterableIterator<GenerationEvent> {
  const coalesce = options.coalesce ?? false;
  const intervalMs = coalesce ? (options.intervalMs ?? 0) : 0;
  const stop = new AbortController();
  // Pieces not handed out yet: their texts and tokens, in order.
  let texts: string[] = [];
  let tokens: GeneratedToken[] = [];
  let result: GenerationResult | undefined;
  let failure: { error: unknown } | undefined;
  let isFinished = false;
  let isClosed = false;
  /** When the last event with pieces went out (performance.now()); -Infinity: none yet. */
  let lastSentAt = -Infinity;
  let wake: (() => void) | undefined;
  /** Set while next() waits out the interval: new pieces need not wake it. */
  let timer: ReturnType<typeof setTimeout> | undefined;
  const head = holdTheStart(options.output);
  let isCounted = intervalMs > 0;
  if (isCounted) openPaced++;
  const uncount = (): void => {
    if (isCounted) openPaced--;
    isCounted = false;
  };

  const notify = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    wake?.();
    wake = undefined;
  };
  start({
    signal: anySignal([signal], stop),
    onDelta: (d) => {
      texts.push(d.text);
      tokens.push(d.token);
      if (timer === undefined) notify();
    },
  }).then(
    (value) => {
      result = value;
      isFinished = true;
      holdTheEnd(options.output);
      uncount();
      notify();
    },
    (error: unknown) => {
      failure = { error };
      isFinished = true;
      uncount();
      notify();
    },
  );

  const close = (): IteratorResult<GenerationEvent> => {
    isClosed = true;
    head.release();
    uncount();
    // Nothing listens once the generation has ended; aborting would only build a DOMException.
    if (!isFinished) stop.abort();
    notify();
    return { value: undefined, done: true };
  };

  /** The waiting pieces as one event (all of them, or with coalescing off the first). */
  const takePieces = (): GenerationEvent => {
    if (!coalesce) {
      const token = tokens.shift()!;
      return { delta: texts.shift()!, token, tokens: [token], done: false, generation: null };
    }
    const taken = tokens;
    const delta = texts.length === 1 ? texts[0] : texts.join('');
    texts = [];
    tokens = [];
    lastSentAt = intervalMs > 0 ? performance.now() : lastSentAt;
    return { delta, token: taken[taken.length - 1], tokens: taken, done: false, generation: null };
  };

  /** The next event, once the first is handed out: the held headers go with it. */
  const next = async (): Promise<IteratorResult<GenerationEvent>> => {
    try {
      return await nextEvent();
    } finally {
      head.release();
    }
  };

  const nextEvent = async (): Promise<IteratorResult<GenerationEvent>> => {
    while (!isClosed) {
      if (tokens.length > 0) {
        const wait = isFinished || intervalMs === 0 ? 0 : lastSentAt + pacedIntervalMs(intervalMs, openPaced) - performance.now();
        if (wait <= 0) return { value: takePieces(), done: false };
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(notify, wait);
        });
        continue;
      }
      if (failure) {
        close();
        throw failure.error;
      }
      if (result) {
        const generation = result;
        result = undefined;
        return { value: { delta: '', token: null, tokens: [], done: true, generation }, done: false };
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
