// Real components for the scale-out tests: redis-server and haproxy from Debian
// (training/install-deps.sh installs them), each on a free port of 127.0.0.1, each
// stopped by its own PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const HAPROXY = '/usr/sbin/haproxy';
export const hasRedis = existsSync(REDIS_SERVER);
export const hasHaproxy = existsSync(HAPROXY);

/** A port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const isOpen = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (isOpen) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface Process {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Send a signal (default SIGTERM) and wait for the exit; no-op once it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Process {
  const child = spawn(command, [...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (chunk: Buffer): void => void (out = (out + chunk.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

export interface Redis extends Process {
  readonly port: number;
  readonly url: string;
}

/** redis-server in the foreground: no persistence, LRU at 64 MB, as deploy/k8s/redis.yaml runs it. */
export async function startRedis(port?: number): Promise<Redis> {
  const p = port ?? (await freePort());
  const proc = run(REDIS_SERVER, ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru']);
  await waitForPort(p);
  return { ...proc, port: p, url: `redis://127.0.0.1:${p}` };
}
