// GraphQL over WebSocket (graphql-ws protocol) on the same HTTP server and path as
// GraphQL over HTTP, running every operation through yoga's envelop, so the limits,
// deadline, error masking and metrics are the same on both transports.
import type { IncomingMessage } from 'node:http';
import { GraphQLError, getOperationAST, type DocumentNode, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { IrisYoga } from './app.ts';
import type { MaskError } from './plugins/errors.ts';

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
 *
 * Whatever goes wrong before an operation runs (a syntax error, a refused document, no
 * operation to run) is answered with an `error` message for that operation, masked like
 * HTTP errors: graphql-ws closes the whole socket (4500) on a thrown error, which lost
 * every other subscription on it.
 */
function toGraphQLError(error: Error): GraphQLError {
  return error instanceof GraphQLError ? error : new GraphQLError(error.message, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
}

/** yoga adds GRAPHQL_PARSE_FAILED to syntax errors of HTTP requests only. */
function parseOrCode(parse: (query: string) => DocumentNode, query: string): DocumentNode {
  try {
    return parse(query);
  } catch (error) {
    if (!(error instanceof GraphQLError) || error.extensions.code) throw error;
    throw new GraphQLError(error.message, { source: error.source, positions: error.positions, extensions: { code: 'GRAPHQL_PARSE_FAILED' } });
  }
}

export function serveGraphqlOverWebSocket(yoga: IrisYoga, wsServer: WebSocketServer, maskError: MaskError): WebSocketDisposer {
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
        try {
          const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
            ...ctx,
            req: ctx.extra.request,
            socket: ctx.extra.socket,
            params: payload,
            clientSignal: controller.signal,
          });
          const document = parseOrCode(parse, payload.query);
          const errors = validate(schema, document);
          if (errors.length > 0) return errors.map((e: GraphQLError) => toGraphQLError(maskError(e, 'Unexpected error.')));
          if (!getOperationAST(document, payload.operationName)) {
            return [new GraphQLError('Could not determine what operation to execute.', { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } })];
          }
          const args: ExecutionArgs = {
            schema,
            operationName: payload.operationName,
            document,
            variableValues: payload.variables,
            contextValue: await contextFactory(),
            rootValue: { execute, subscribe } satisfies Envelope,
          };
          return args;
        } catch (error) {
          finish(ctx.extra.socket, id);
          return [toGraphQLError(maskError(error, 'Unexpected error.'))];
        }
      },
      onComplete: (ctx, id) => finish(ctx.extra.socket, id),
    },
    wsServer,
  );
}
