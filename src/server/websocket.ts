// GraphQL over WebSocket (graphql-ws protocol) on the same HTTP server and path as
// GraphQL over HTTP, running every operation through yoga's envelop, so the limits,
// deadline, error masking and metrics are the same on both transports.
import type { IncomingMessage } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { IrisYoga } from './app.ts';
import type { AccessControl, Client } from './access.ts';
import { IrisError } from '../contract/types.ts';

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
/** The key from connection_init's payload (`authorization` or `Authorization`), else the upgrade request's header. */
function authorizationOf(params: Readonly<Record<string, unknown>> | undefined, request: IncomingMessage): string | undefined {
  const fromParams = params?.authorization ?? params?.Authorization;
  return typeof fromParams === 'string' ? fromParams : request.headers.authorization;
}

/**
 * With `access`, a connection needs a valid key (else it is closed with 4403 Forbidden) and
 * each operation counts against its client's rate limits (else it gets a RATE_LIMITED error).
 */
export function serveGraphqlOverWebSocket(yoga: IrisYoga, wsServer: WebSocketServer, access?: AccessControl): WebSocketDisposer {
  const clients = new WeakMap<WebSocket, Client>();
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
      onConnect: (ctx) => {
        if (!access) return true;
        try {
          clients.set(ctx.extra.socket, access.authenticate(authorizationOf(ctx.connectionParams, ctx.extra.request), ctx.extra.request.socket.remoteAddress));
          return true;
        } catch {
          return false;
        }
      },
      onSubscribe: async (ctx, id, payload) => {
        const irisClient = clients.get(ctx.extra.socket);
        if (access && irisClient) {
          try {
            access.admit(irisClient);
          } catch (error) {
            if (!(error instanceof IrisError)) throw error;
            return [new GraphQLError(error.message, { extensions: { code: error.code, retryAfterSeconds: error.retryAfterSeconds } })];
          }
        }
        const controller = controllerFor(ctx.extra.socket, id);
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          clientSignal: controller.signal,
          irisClient,
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
