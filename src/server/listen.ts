// Puts an IrisApp on a socket: HTTP (GraphQL, GraphiQL, SSE, /health, /ready, /metrics)
// and GraphQL over WebSocket on the same port and path.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { ConfigError } from '../config/config.ts';
import { GRAPHQL_PATH, type IrisApp } from './app.ts';
import { serveGraphqlOverWebSocket } from './websocket.ts';

export interface IrisServer {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  readonly url: string;
  readonly port: number;
  readonly http: Server;
  close(): Promise<void>;
}

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
}

function portInUse(options: ListenOptions): ConfigError {
  return new ConfigError(`--port ${options.port} on ${options.host} is already in use: stop the server that holds it, or choose another port with --port (PORT; 0 takes any free one)`);
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function listen(app: IrisApp, options: ListenOptions): Promise<IrisServer> {
  const http = createServer(app.yoga);
  await new Promise<void>((resolve, reject) => {
    http.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? portInUse(options) : error));
    http.listen(options.port, options.host, () => {
      http.removeAllListeners('error');
      resolve();
    });
  });
  // Attached once the port is ours: a WebSocket server on a socket that failed to listen
  // would report the failure again, as an "internal error" of its own.
  // The WebSocket cap matches the HTTP body cap: base64 images travel in both.
  const wsServer = new WebSocketServer({ server: http, path: GRAPHQL_PATH, maxPayload: app.config.limits.bodyBytes });
  const ws = serveGraphqlOverWebSocket(app.yoga, wsServer, app.access);
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://${hostForUrl(options.host)}:${port}${GRAPHQL_PATH}`,
    port,
    http,
    async close() {
      for (const client of wsServer.clients) client.terminate();
      await ws.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
