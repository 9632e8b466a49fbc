// GraphQL over WebSocket (graphql-ws protocol) on the same HTTP server and path as
// GraphQL over HTTP, running every operation through yoga's envelop, so the limits,
// deadline, error masking and metrics are the same on both transports.
import type { IncomingMessage } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { IrisYoga } from './app.ts';

interface Envelope {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

/** Closes graphql-ws's handling of `wsServer`; returned by useServer. */
export type WebSocketDisposer = { dispose(): void | Promise<void> };

/**
 * Each operation gets an AbortController that fires when it completes (client sent
 * `complete`) or when the socket closes, and becomes the operation's client signal, so a
 * client that goes away stops its generation between decode steps.
 */
export function serveGraphqlOverWebSocket(yoga: IrisYoga, wsServer: WebSocketServer): WebSocketDisposer {
  const operations = new WeakMap<WebSocket, Map<string, AbortController>>();
  const controllerFor = (socket: WebSocket, id: string): AbortController => {
    let byId = operations.get(socket);
    if (!byId) {
      const created = new Map<string, AbortController>();
      socket.once('close', () => created.forEach((c) => c.abort(new Error('WebSocket closed'))));
      operations.set(socket, created);
      byId = created;
    }
    const controller = new AbortController();
    byId.set(id, controller);
    return controller;
  };
  const finish = (socket: WebSocket, id: string): void => {
    operations.get(socket)?.get(id)?.abort(new Error('operation complete'));
    operations.get(socket)?.delete(id);
  };

  return useServer<Record<string, unknown>, { socket: WebSocket; request: IncomingMessage }>(
    {
      execute: (args) => (args.rootValue as Envelope).execute(args) as never,
      subscribe: (args) => (args.rootValue as Envelope).subscribe(args) as never,
      onSubscribe: async (ctx, id, payload) => {
        const controller = controllerFor(ctx.extra.socket, id);
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          clientSignal: controller.signal,
        });
        const document = parse(payload.query);
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        const args: ExecutionArgs = {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe } satisfies Envelope,
        };
        return args;
      },
      onComplete: (ctx, id) => finish(ctx.extra.socket, id),
    },
    wsServer,
  );
}
