// The per-request timeout and client cancellation, as one signal in the GraphQL context.
// Resolvers hand `deadline.signal` to the Generator, which stops between decode steps when
// it fires: because the client went away (HTTP response closed, WebSocket subscription
// completed) or because the request ran past its time, which resolvers report as TIMEOUT.
// The time counts from the request's start, but its timer runs only while a generation
// holds the deadline: an AbortSignal.timeout kept every request's context alive for the
// full timeout (60 s) after it was answered, some 6-15 KB a request.
import type { Plugin } from 'graphql-yoga';
import { anySignal } from '../any-signal.ts';
import type { Drain } from './drain.ts';

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

/**
 * One AbortController per request: the timer and `drain` abort it themselves, and the
 * client's signal is followed into it (see anySignal's `into`).
 */
export function createDeadline(timeoutMs: number, clientSignal: AbortSignal | undefined, drain?: Pick<Drain, 'track'>): Deadline {
  const controller = new AbortController();
  const startedAt = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let holds = 0;
  let isExpired = false;
  // Held by the deadline (isShutDown reads it), so the drain's weak reference lives as long as the request's context.
  const shutdown = {
    isShutDown: false,
    cut(): void {
      if (controller.signal.aborted) return;
      shutdown.isShutDown = true;
      controller.abort(new Error('the drain time ran out'));
    },
  };
  const expire = (): void => {
    if (controller.signal.aborted) return;
    isExpired = true;
    controller.abort(new DOMException(`the request took longer than ${timeoutMs} ms`, 'TimeoutError'));
  };
  const arm = (): void => {
    if (timer !== undefined || controller.signal.aborted) return;
    const left = startedAt + timeoutMs - performance.now();
    if (left <= 0) expire();
    else timer = setTimeout(expire, left);
  };
  const signal = clientSignal ? anySignal([clientSignal], controller) : controller.signal;
  drain?.track(shutdown);
  return {
    signal,
    timeoutMs,
    isExpired: () => isExpired,
    isShutDown: () => shutdown.isShutDown,
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
  /** Ends the requests still running when the server stops waiting for them (the drain time ran out). */
  readonly drain?: Pick<Drain, 'track'>;
}

export function useRequestDeadline(options: DeadlineOptions): Plugin<ClientSignalContext> {
  if (!Number.isInteger(options.timeoutMs) || options.timeoutMs < 1) {
    throw new Error(`timeoutMs must be a positive integer, got ${options.timeoutMs}`);
  }
  return {
    onContextBuilding({ context, extendContext }) {
      const clientSignal = context.clientSignal ?? context.request?.signal;
      extendContext({ deadline: createDeadline(options.timeoutMs, clientSignal, options.drain) } as Partial<ClientSignalContext>);
    },
  };
}
