// Graceful shutdown, the part inside yoga: once draining, /ready answers 503 (see
// readiness.ts) and new GraphQL requests are refused with SHUTTING_DOWN, while requests
// and streams already running go on; when the drain time runs out, `shutdown` fires and
// what still runs ends with SHUTTING_DOWN (deadline.ts, schema/generation.ts). The
// sockets' side (waiting, closing) is listen.ts's.
import type { Plugin } from 'graphql-yoga';

export interface Drain {
  isDraining(): boolean;
  /** Fires when the drain time ran out. */
  readonly shutdown: AbortSignal;
  start(): void;
  cutShort(): void;
}

export function createDrain(): Drain {
  let isDraining = false;
  const cut = new AbortController();
  return {
    isDraining: () => isDraining,
    shutdown: cut.signal,
    start: () => void (isDraining = true),
    cutShort: () => cut.abort(new Error('the drain time ran out')),
  };
}

export function shuttingDownResponse(): Response {
  const message = 'the server is shutting down and takes no new requests; retry on another instance';
  return new Response(JSON.stringify({ errors: [{ message, extensions: { code: 'SHUTTING_DOWN' } }] }), {
    status: 503,
    headers: { 'content-type': 'application/json; charset=utf-8', connection: 'close', 'retry-after': '1' },
  });
}

export function useDrain(drain: Drain, graphqlPath: string): Plugin {
  return {
    onRequest({ url, endResponse }) {
      if (drain.isDraining() && url.pathname === graphqlPath) endResponse(shuttingDownResponse());
    },
  };
}
