// Graceful shutdown, the part inside yoga: once draining, /ready answers 503 (see
// readiness.ts); through the drain delay new requests are still served, then new GraphQL
// requests are refused with SHUTTING_DOWN, while requests and streams already running go
// on; when the drain time runs out, `shutdown` fires and what still runs ends with
// SHUTTING_DOWN (deadline.ts, schema/generation.ts). The sockets' side (waiting,
// closing) is listen.ts's.
import type { Plugin } from 'graphql-yoga';
import { IrisError } from '../../contract/types.ts';
import { errorResponse, toOpenAIError } from '../openai/errors.ts';

/** What a request gives the drain to end it when the drain time runs out. */
export interface Cuttable {
  cut(): void;
}

export interface Drain {
  /** From the signal on: /ready answers 503. */
  isDraining(): boolean;
  /** From the end of the drain delay on: new requests and connections are refused (SHUTTING_DOWN). */
  isRefusing(): boolean;
  /**
   * Has `request.cut()` called if the drain time runs out while it runs (at once if it
   * already has). Held weakly: the caller keeps `request` referenced while the request
   * runs, and a finished one is collected with it. One per request rather than one signal
   * for the server, which every request's combined signal would leave a listener on (see
   * any-signal.ts).
   */
  track(request: Cuttable): void;
  /** Not ready any more; new requests are still served until `refuseNew`. */
  start(): void;
  refuseNew(): void;
  cutShort(): void;
}

/** Tracked requests are held weakly: a finished request is collected with its context. */
export function createDrain(): Drain {
  let isDraining = false;
  let isRefusing = false;
  let isCut = false;
  const live = new Set<WeakRef<Cuttable>>();
  let pruneAt = 1024;
  const prune = (): void => {
    for (const ref of live) if (ref.deref() === undefined) live.delete(ref);
    pruneAt = Math.max(1024, 2 * live.size);
  };
  return {
    isDraining: () => isDraining,
    isRefusing: () => isRefusing,
    track(request) {
      if (isCut) return request.cut();
      live.add(new WeakRef(request));
      if (live.size > pruneAt) prune();
    },
    start: () => void (isDraining = true),
    refuseNew() {
      isDraining = true;
      isRefusing = true;
    },
    cutShort() {
      isCut = true;
      for (const ref of live) ref.deref()?.cut();
      live.clear();
    },
  };
}

const SHUTTING_DOWN_MESSAGE = 'the server is shutting down and takes no new requests; retry on another instance';

export function shuttingDownResponse(): Response {
  const message = SHUTTING_DOWN_MESSAGE;
  return new Response(JSON.stringify({ errors: [{ message, extensions: { code: 'SHUTTING_DOWN' } }] }), {
    status: 503,
    headers: { 'content-type': 'application/json; charset=utf-8', connection: 'close', 'retry-after': '1' },
  });
}

/** New GraphQL and /v1 requests are refused once the drain refuses new ones (the latter in OpenAI's error shape). */
export function useDrain(drain: Drain, graphqlPath: string, openaiPrefix: string): Plugin {
  return {
    onRequest({ url, endResponse }) {
      if (!drain.isRefusing()) return;
      if (url.pathname === graphqlPath) endResponse(shuttingDownResponse());
      else if (url.pathname === openaiPrefix || url.pathname.startsWith(`${openaiPrefix}/`)) {
        const response = errorResponse(toOpenAIError(new IrisError('SHUTTING_DOWN', SHUTTING_DOWN_MESSAGE, { retryAfterSeconds: 1 })));
        response.headers.set('connection', 'close');
        endResponse(response);
      }
    },
  };
}
