// Puts an IrisApp on a socket: HTTP (GraphQL, GraphiQL, SSE, /health, /ready, /metrics)
// and GraphQL over WebSocket on the same port and path.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
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

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function listen(app: IrisApp, options: ListenOptions): Promise<IrisServer> {
  const http = createServer(app.yoga);
  // The WebSocket cap matches the HTTP body cap: base64 images travel in both.
  const wsServer = new WebSocketServer({ server: http, path: GRAPHQL_PATH, maxPayload: app.config.limits.bodyBytes });
  const ws = serveGraphqlOverWebSocket(app.yoga, wsServer, app.maskError);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, options.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
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
