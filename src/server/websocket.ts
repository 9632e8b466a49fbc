// GraphQL over WebSocket (graphql-ws protocol) on the same HTTP server and path as
// GraphQL over HTTP, running every operation through yoga's envelop, so the limits,
// deadline, error masking and metrics are the same on both transports.
import type { IncomingMessage } from 'node:http';
import { GraphQLError, getOperationAST, type DocumentNode, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { IrisYoga } from './app.ts';
import type { MaskError } from './plugins/errors.ts';
import type { AccessControl, Client } from './access.ts';
import { IrisError } from '../contract/types.ts';
import type { ByteBudget } from './intake/budget.ts';

interface Envelope {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

export interface WebSocketService {
  /** Closes graphql-ws's handling of the server. */
  dispose(): void | Promise<void>;
  /** Operations subscribed and not yet complete, on every socket (what a drain waits for). */
  activeOperations(): number;
}

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

/** The key from connection_init's payload (`authorization` or `Authorization`), else the upgrade request's header. */
function authorizationOf(params: Readonly<Record<string, unknown>> | undefined, request: IncomingMessage): string | undefined {
  const fromParams = params?.authorization ?? params?.Authorization;
  return typeof fromParams === 'string' ? fromParams : request.headers.authorization;
}

export interface WebSocketOptions {
  /** The masking yoga applies, for errors reported outside it. */
  readonly maskError: MaskError;
  /**
   * With access control, a connection needs a valid key (else it is closed with 4403
   * Forbidden) and each operation counts against its client's rate limits (else it gets
   * a RATE_LIMITED error).
   */
  readonly access?: AccessControl;
  /**
   * The intake byte budget HTTP bodies reserve: an operation reserves its payload's size
   * (its strings: the base64 image dominates) before it runs and holds it until it
   * completes, so images sent over WebSocket are decoded a few at a time too; beyond the
   * waiting limit the operation gets OVERLOADED (the socket and its other operations stay).
   */
  readonly budget?: ByteBudget;
}

/** The bytes an operation's payload holds, about: its strings' lengths, 8 per other value (no copy of the payload is made). */
export function payloadBytes(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + payloadBytes(v), 8);
  if (value !== null && typeof value === 'object') return Object.entries(value).reduce((n, [k, v]) => n + k.length + payloadBytes(v), 8);
  return 8;
}

export function serveGraphqlOverWebSocket(yoga: IrisYoga, wsServer: WebSocketServer, options: WebSocketOptions): WebSocketService {
  const { maskError, access, budget } = options;
  const reservations = new WeakMap<AbortController, () => void>();
  const clients = new WeakMap<WebSocket, Client>();
  const operations = new WeakMap<WebSocket, Map<string, AbortController>>();
  const live = new Set<AbortController>();
  const controllerFor = (socket: WebSocket, id: string): AbortController => {
    let byId = operations.get(socket);
    if (!byId) {
      const created = new Map<string, AbortController>();
      socket.once('close', () =>
        created.forEach((c) => {
          c.abort(new Error('WebSocket closed'));
          live.delete(c);
        }),
      );
      operations.set(socket, created);
      byId = created;
    }
    const controller = new AbortController();
    byId.set(id, controller);
    live.add(controller);
    return controller;
  };
  const finish = (socket: WebSocket, id: string): void => {
    const controller = operations.get(socket)?.get(id);
    controller?.abort(new Error('operation complete'));
    if (controller) {
      live.delete(controller);
      reservations.get(controller)?.();
    }
    operations.get(socket)?.delete(id);
  };
  const refuse = (socket: WebSocket, id: string, errors: readonly GraphQLError[]): GraphQLError[] => {
    finish(socket, id);
    return [...errors];
  };

  const disposer = useServer<Record<string, unknown>, { socket: WebSocket; request: IncomingMessage }>(
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
        // Released when the operation finishes, or when the socket closes (its abort).
        if (budget) {
          try {
            const release = await budget.acquire(payloadBytes(payload), controller.signal);
            reservations.set(controller, release);
            if (controller.signal.aborted) release();
            else controller.signal.addEventListener('abort', release, { once: true });
          } catch (error) {
            if (controller.signal.aborted) return refuse(ctx.extra.socket, id, [new GraphQLError('the operation ended before it ran', { extensions: { code: 'CANCELLED' } })]);
            const code = error instanceof IrisError ? error.code : 'OVERLOADED';
            return refuse(ctx.extra.socket, id, [new GraphQLError(error instanceof Error ? error.message : String(error), { extensions: { code } })]);
          }
        }
        try {
          const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
            ...ctx,
            req: ctx.extra.request,
            socket: ctx.extra.socket,
            params: payload,
            clientSignal: controller.signal,
            irisClient,
          });
          const document = parseOrCode(parse, payload.query);
          const errors = validate(schema, document);
          if (errors.length > 0) return refuse(ctx.extra.socket, id, errors.map((e: GraphQLError) => toGraphQLError(maskError(e, 'Unexpected error.'))));
          if (!getOperationAST(document, payload.operationName)) {
            return refuse(ctx.extra.socket, id, [new GraphQLError('Could not determine what operation to execute.', { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } })]);
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
          return refuse(ctx.extra.socket, id, [toGraphQLError(maskError(error, 'Unexpected error.'))]);
        }
      },
      onComplete: (ctx, id) => finish(ctx.extra.socket, id),
    },
    wsServer,
  );
  return { dispose: () => disposer.dispose(), activeOperations: () => live.size };
}
