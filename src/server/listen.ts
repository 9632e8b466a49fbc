// Puts an IrisApp on a socket: HTTP (GraphQL, GraphiQL, SSE, /health, /ready, /metrics)
// and GraphQL over WebSocket on the same port and path, and takes it off gracefully.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { ConfigError } from '../config/config.ts';
import { GRAPHQL_PATH, type IrisApp } from './app.ts';
import { anySignal } from './any-signal.ts';
import { createByteBudget, type ByteBudget } from './intake/budget.ts';
import { loadMallocTrim, type MallocTrim } from './memory/malloc-trim.ts';
import { releaseAfterBursts, type MemoryRelease } from './memory/release.ts';
import { serveGraphqlOverWebSocket } from './websocket.ts';

export interface DrainReport {
  /** HTTP requests (SSE streams included) and WebSocket operations running when new ones began to be refused (after the delay). */
  readonly inFlight: number;
  /** HTTP requests (not /ready, /health or /metrics) that arrived during the drain delay and were accepted, not refused. */
  readonly acceptedDuringDelay: number;
  /** Those the drain time cut short (they ended with SHUTTING_DOWN). */
  readonly cutShort: number;
}

export interface IrisServer {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  readonly url: string;
  readonly port: number;
  readonly http: Server;
  close(): Promise<void>;
  /**
   * Graceful shutdown: /ready turns 503 at once; for `delayMs` new requests and WebSocket
   * connections are still accepted and served (the balancer has not noticed yet), then
   * they are refused (SHUTTING_DOWN) while running requests, streams and WebSocket
   * operations finish; `timeoutMs` after the delay what still runs ends with
   * SHUTTING_DOWN. Then the server closes.
   */
  drain(timeoutMs: number, delayMs?: number): Promise<DrainReport>;
}

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
}

export interface ListenHooks {
  /** Memory released after a burst of request bodies (also counted in iris_memory_releases_total). */
  readonly onMemoryRelease?: (release: MemoryRelease) => void;
  /** Once, when a release had no native/malloc-trim.node to trim malloc's heap with. */
  readonly onMallocTrimMissing?: () => void;
  /** The trim to use; default: the addon's (loadMallocTrim()). */
  readonly mallocTrim?: MallocTrim | null;
}

function portInUse(options: ListenOptions): ConfigError {
  return new ConfigError(`--port ${options.port} on ${options.host} is already in use: stop the server that holds it, or choose another port with --port (PORT; 0 takes any free one)`);
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

const POLL_MS = 20;
/** After the drain time, how long cut-short requests get to send their SHUTTING_DOWN answer. */
export const DRAIN_FLUSH_MS = 5_000;

/** How many budgets' worth of request bodies may wait unread before new ones get OVERLOADED. */
const WAITING_BUDGETS = 16;

function overloadedResponse(res: ServerResponse, message: string): void {
  if (res.headersSent) return;
  res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', connection: 'close', 'retry-after': '1' });
  res.end(JSON.stringify({ errors: [{ message, extensions: { code: 'OVERLOADED' } }] }));
}

/**
 * The bytes a request reserves: its Content-Length, or for a chunked body the cap of its
 * kind; none for a body the caps refuse unread (body-limit.ts) or a request without one.
 */
function reservationOf(req: IncomingMessage, limits: IrisApp['config']['limits']): number {
  const cap = (req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/') ? limits.uploadBytes : limits.bodyBytes;
  const header = req.headers['content-length'];
  if (header !== undefined) return /^\d+$/.test(header) && Number(header) <= cap ? Number(header) : 0;
  return req.headers['transfer-encoding'] !== undefined ? cap : 0;
}

/** Runs `handle` once the request's bytes fit the budget; answers OVERLOADED if they cannot, in time. */
function withinBudget(budget: ByteBudget, app: IrisApp, req: IncomingMessage, res: ServerResponse, handle: () => void): void {
  const bytes = reservationOf(req, app.config.limits);
  if (bytes === 0) return handle();
  // Most requests fit at once: no signals, timer or promise for them.
  const granted = budget.tryAcquire(bytes);
  if (granted) {
    res.once('close', granted);
    return handle();
  }
  const gone = new AbortController();
  res.once('close', () => gone.abort(new Error('the client went away')));
  const signal = anySignal([gone.signal, AbortSignal.timeout(app.config.limits.requestTimeoutMs)]);
  budget.acquire(bytes, signal).then(
    (release) => {
      res.once('close', release);
      handle();
    },
    (error: unknown) => {
      if (gone.signal.aborted) return;
      overloadedResponse(res, error instanceof Error && !(error instanceof DOMException) ? error.message : 'the server could not start reading this request in time; retry later');
    },
  );
}

/** Health checks and scrapes: not requests a balancer sends on to be served. */
const PROBE_PATHS = new Set(['/ready', '/health', '/metrics']);
const isProbe = (req: IncomingMessage): boolean => PROBE_PATHS.has((req.url ?? '').replace(/\?.*$/, ''));

async function waitUntil(isDone: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!isDone()) {
    if (Date.now() >= end) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return true;
}

export async function listen(app: IrisApp, options: ListenOptions, hooks: ListenHooks = {}): Promise<IrisServer> {
  // Requests whose response has not closed yet: an SSE stream counts until its last event.
  let activeRequests = 0;
  let acceptedDuringDelay = 0;
  const { intakeBytes } = app.config.limits;
  const afterBursts = releaseAfterBursts({
    threshold: intakeBytes,
    isIdle: () => {
      const { reserved, waiting } = budget.usage();
      return reserved === 0 && waiting === 0;
    },
    enabled: app.config.server.releaseMemory,
    trim: hooks.mallocTrim === undefined ? loadMallocTrim() : (hooks.mallocTrim ?? undefined),
    onRelease: (release) => {
      app.metrics.recordMemoryRelease(release);
      hooks.onMemoryRelease?.(release);
    },
    onUnavailable: hooks.onMallocTrimMissing,
  });
  const budget: ByteBudget = createByteBudget(intakeBytes, WAITING_BUDGETS * intakeBytes, afterBursts);
  const http = createServer((req, res) => {
    // Those that arrive once the drain refuses new requests are answered at once
    // (SHUTTING_DOWN, /ready 503); during the drain delay they are served as usual.
    if (!app.drain.isRefusing()) {
      if (app.drain.isDraining() && !isProbe(req)) acceptedDuringDelay++;
      activeRequests++;
      res.once('close', () => activeRequests--);
      withinBudget(budget, app, req, res, () => void app.yoga(req, res));
    } else {
      void app.yoga(req, res);
    }
  });
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
  const wsServer = new WebSocketServer({
    server: http,
    path: GRAPHQL_PATH,
    maxPayload: app.config.limits.bodyBytes,
    verifyClient: (_info, accept) => (app.drain.isRefusing() ? accept(false, 503, 'shutting down') : accept(true)),
  });
  const ws = serveGraphqlOverWebSocket(app.yoga, wsServer, { maskError: app.maskError, access: app.access, budget });
  const { port } = http.address() as AddressInfo;
  const inFlight = (): number => activeRequests + ws.activeOperations();
  const close = async (): Promise<void> => {
    for (const client of wsServer.clients) client.terminate();
    await ws.dispose();
    await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  };
  return {
    url: `http://${hostForUrl(options.host)}:${port}${GRAPHQL_PATH}`,
    port,
    http,
    close,
    async drain(timeoutMs, delayMs = 0) {
      app.drain.start();
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      app.drain.refuseNew();
      const running = inFlight();
      let cutShort = 0;
      if (!(await waitUntil(() => inFlight() === 0, timeoutMs))) {
        cutShort = inFlight();
        app.drain.cutShort();
        await waitUntil(() => inFlight() === 0, DRAIN_FLUSH_MS);
      }
      for (const client of wsServer.clients) client.close(1001, 'server shutting down');
      await close();
      return { inFlight: running, acceptedDuringDelay, cutShort };
    },
  };
}
