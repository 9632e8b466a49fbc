// The per-request timeout and client cancellation, as one signal in the GraphQL context.
// Resolvers hand `deadline.signal` to the Generator, which stops between decode steps when
// it fires: because the client went away (HTTP response closed, WebSocket subscription
// completed) or because the request ran past its time, which resolvers report as TIMEOUT.
// The time counts from the request's start, but its timer runs only while a generation
// holds the deadline: an AbortSignal.timeout kept every request's context alive for the
// full timeout (60 s) after it was answered, some 6-15 KB a request.
import type { Plugin } from 'graphql-yoga';
import { anySignal } from '../any-signal.ts';

export interface Deadline {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** True once the time ran out (as opposed to the client leaving). */
  isExpired(): boolean;
  /** True once the server's drain time ran out and it ended what was still running. */
  isShutDown(): boolean;
  /** Runs the timer (from the request's start) until every hold is released. */
  hold(): () => void;
}

export interface DeadlineContext {
  readonly deadline: Deadline;
}

/** Transports without a fetch Request (graphql-ws) put their own signal here. */
export interface ClientSignalContext {
  readonly clientSignal?: AbortSignal;
  readonly request?: Request;
}

/** `shutdown` must be this request's own signal (see Drain.track): anySignal leaves a listener on each source. */
export function createDeadline(timeoutMs: number, clientSignal: AbortSignal | undefined, shutdown?: AbortSignal): Deadline {
  const expiry = new AbortController();
  const startedAt = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let holds = 0;
  const expire = (): void => expiry.abort(new DOMException(`the request took longer than ${timeoutMs} ms`, 'TimeoutError'));
  const arm = (): void => {
    if (timer !== undefined || expiry.signal.aborted) return;
    const left = startedAt + timeoutMs - performance.now();
    if (left <= 0) expire();
    else timer = setTimeout(expire, left);
  };
  const signals = [expiry.signal, ...(clientSignal ? [clientSignal] : []), ...(shutdown ? [shutdown] : [])];
  return {
    signal: anySignal(signals),
    timeoutMs,
    isExpired: () => expiry.signal.aborted,
    // Also keeps `shutdown` referenced while the request's context lives.
    isShutDown: () => shutdown?.aborted === true,
    hold() {
      holds++;
      arm();
      let isReleased = false;
      return () => {
        if (isReleased) return;
        isReleased = true;
        holds--;
        if (holds === 0 && timer !== undefined) {
          clearTimeout(timer);
          timer = undefined;
        }
      };
    },
  };
}

export interface DeadlineOptions {
  readonly timeoutMs: number;
  /** A new signal per request that fires when the server stops waiting for it (the drain time ran out). */
  readonly shutdown?: () => AbortSignal;
}

export function useRequestDeadline(options: DeadlineOptions): Plugin<ClientSignalContext> {
  if (!Number.isInteger(options.timeoutMs) || options.timeoutMs < 1) {
    throw new Error(`timeoutMs must be a positive integer, got ${options.timeoutMs}`);
  }
  return {
    onContextBuilding({ context, extendContext }) {
      const clientSignal = context.clientSignal ?? context.request?.signal;
      extendContext({ deadline: createDeadline(options.timeoutMs, clientSignal, options.shutdown?.()) } as Partial<ClientSignalContext>);
    },
  };
}
