// Servers on 127.0.0.1 for socket tests: Iris itself (on a test-double or a real model),
// and a small image host for URL intake.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createConfig, type ConfigInput } from '../../src/config/config.ts';
import { createIrisApp, type IrisApp } from '../../src/server/app.ts';
import { listen, type IrisServer, type ListenHooks } from '../../src/server/listen.ts';
import type { LoadModel } from '../../src/server/registry.ts';
import { TASKS, type Generator } from '../../src/contract/types.ts';

export interface RunningIris {
  readonly app: IrisApp;
  readonly server: IrisServer;
  readonly url: string;
}

export async function startIris(options: { generator?: Generator; load?: LoadModel; config?: ConfigInput; hooks?: ListenHooks }): Promise<RunningIris> {
  const generator = options.generator;
  const load: LoadModel = options.load ?? (async () => ({ generator: generator as Generator, tasks: TASKS, attention: false }));
  const config = createConfig({
    ...options.config,
    server: { host: '127.0.0.1', port: 0 },
    models: { specs: [{ id: 'fake', dir: '/nonexistent' }], ...options.config?.models },
  });
  const app = createIrisApp({ config, load, logUnexpected: () => undefined });
  const server = await listen(app, config.server, options.hooks);
  await app.registry.loaded;
  return { app, server, url: server.url };
}

export type Route = (req: IncomingMessage, res: ServerResponse, base: string) => void;

export interface ImageHost {
  readonly base: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startImageHost(routes: Record<string, Route>): Promise<ImageHost> {
  let base = '';
  const server = createServer((req, res) => {
    const route = routes[new URL(req.url ?? '/', base).pathname];
    if (route) route(req, res, base);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}`;
  return {
    base,
    port,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Reads an SSE response into events until `stop` says enough or the stream ends. */
export async function readSse(response: Response, stop: (events: unknown[]) => boolean = () => false): Promise<unknown[]> {
  const events: unknown[] = [];
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event === 'next' && data) events.push(JSON.parse(data));
    }
    if (stop(events)) {
      await reader.cancel();
      break;
    }
  }
  return events;
}

type SocketWrites = { _write: (...args: unknown[]) => void; _writev: (chunks: { chunk: unknown }[], cb: unknown) => void };

/** What `run` makes `server` write to its sockets, one string per write (system call), in order. */
export async function socketWritesDuring(server: Server, run: () => Promise<void>): Promise<string[]> {
  const writes: string[] = [];
  const restore: (() => void)[] = [];
  const spy = (_req: unknown, res: { socket: SocketWrites }): void => {
    const socket = res.socket;
    const { _write, _writev } = socket;
    socket._write = (chunk, ...rest) => (writes.push(String(chunk)), _write.call(socket, chunk, ...rest));
    socket._writev = (chunks, cb) => (writes.push(chunks.map((c) => String(c.chunk)).join('')), _writev.call(socket, chunks, cb));
    restore.push(() => Object.assign(socket, { _write, _writev }));
  };
  server.prependListener('request', spy);
  try {
    await run();
  } finally {
    server.off('request', spy);
    restore.forEach((r) => r());
  }
  return writes;
}
