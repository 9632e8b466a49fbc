// The servers the benchmark drives, each its own process with the probe preloaded
// (bench/perf/probe.mjs: onnxruntime CPU per call kind and thread), its log in the probe
// directory: Iris (`src/server.ts`, as `npm start` runs it, limits raised so a load level
// is never refused) and the transformers.js baseline (bench/tjs-server.ts) on the same folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../test/helpers.ts';
import { npmStartEnv } from '../start-env.ts';

export interface Server {
  name: string;
  kind: 'iris' | 'tjs';
  url: string;
  pid: number;
  child: ChildProcess;
}

export interface StartOptions {
  /** Where the probe writes its per-thread totals (and the server its log). */
  probeDir: string;
  /** Directory for the main thread's V8 CPU profile (node --cpu-prof), written when the server exits. */
  cpuProfileDir?: string;
  /** Sampling interval of that profile, µs. */
  cpuProfileIntervalUs?: number;
  /** Extra node flags, e.g. V8's --trace-gc (what they print goes to the server's log). */
  nodeFlags?: readonly string[];
}

const PROBE = join(ROOT, 'bench/perf/probe.mjs');

export async function startIris(name: string, modelDir: string, options: StartOptions, extraFlags: readonly string[] = []): Promise<Server> {
  const args = ['src/server.ts', '--host', '127.0.0.1', '--port', '0', '--model', `m=${modelDir}`, '--max-queued', '512', '--request-timeout-ms', '600000', '--query-max-cost', '100000', ...extraFlags];
  const server = await start(name, 'iris', args, /serving (http:\S+)/, options, npmStartEnv());
  while ((await fetch(server.url.replace(/\/graphql$/, '/ready')).catch(() => undefined))?.status !== 200) await sleep(50);
  return server;
}

export function startTjs(name: string, modelDir: string, options: StartOptions, extraArgs: readonly string[] = []): Promise<Server> {
  return start(name, 'tjs', ['bench/tjs-server.ts', modelDir, ...extraArgs], /tjs: serving (http:\S+)/, options);
}

async function start(name: string, kind: Server['kind'], args: readonly string[], ready: RegExp, options: StartOptions, env: Record<string, string> = {}): Promise<Server> {
  const profile = options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir, '--cpu-prof-interval', String(options.cpuProfileIntervalUs ?? 1000)] : [];
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), ...profile, '--import', 'tsx', '--import', PROBE, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env, IRIS_PROBE_DIR: options.probeDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(join(options.probeDir, `server-${name}.log`));
  child.stderr!.pipe(log);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const match = ready.exec(out);
      if (match) {
        child.stdout!.off('data', onData);
        child.stdout!.pipe(log);
        resolve(match[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before serving; see ${join(options.probeDir, `server-${name}.log`)}`)));
  });
  return { name, kind, url, pid: child.pid!, child };
}

/** Peak resident set (VmHWM) of a running server, MB. */
export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

/** SIGTERM, then wait for the exit (Iris drains and exits; --cpu-prof writes on exit); SIGKILL after `graceMs`. */
export async function stop(server: Server, graceMs = 15_000): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
