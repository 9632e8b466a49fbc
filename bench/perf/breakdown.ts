// CPU per request broken down the way issue 12 tabulates it: onnxruntime by call kind (the
// probe's thread-CPU totals), then everything else by where it runs. Pure arithmetic on
// one level's figures (ms of server CPU per request, proc-cpu.ts groups) and, when the
// server ran with --cpu-prof, the main thread's profile shares of its non-onnxruntime time.
//   image   sharp's threads (libuv pool, libvips), image-worker JS, the main thread's
//           intake probe / hashing / loader
//   http    GraphQL, yoga, HTTP, SSE, the body's base64 (and node core under them)
//   gc      the main thread's garbage collection and V8's background threads (concurrent
//           marking, sweeping; JIT compilation is there too and cannot be told apart)
//   engine  scheduling, batch assembly, feeds, sampling (and worker threads that run decoder
//           calls, should the engine move off the main thread)
//   other   unattributed native time ("(program)"), tsx, the probe, other packages
// Without profile shares (the transformers.js server, which is one JS thread) the main
// thread's non-onnxruntime time stays one row, "main thread JS".
import type { ProfileBucket } from './cpu-profile.ts';

export type Shares = Record<Exclude<ProfileBucket, 'onnxruntime' | 'idle'>, number>;

/** One level's server CPU, ms per request. */
export interface LevelCpu {
  threadsTotal: number;
  /** proc-cpu.ts thread groups: main, worker, libuv-pool, libvips, v8-platform+startup, other. */
  byGroup: Record<string, number>;
  /** onnxruntime session.run CPU by kind: encoder, prefill, decode, verify, draft:*. */
  ort: Record<string, number>;
  ortByGroup: Record<string, Record<string, number>>;
}

export const ROWS = [
  ['ortEncoder', 'onnxruntime: vision encoder'],
  ['ortPrefill', 'onnxruntime: prefill'],
  ['ortDecode', 'onnxruntime: decode steps (and verify, draft)'],
  ['ort', 'onnxruntime, all'],
  ['otherThreads', 'other threads (tjs: onnxruntime intra-op pool)'],
  ['image', 'image decode and resize'],
  ['http', 'GraphQL, yoga, HTTP and SSE'],
  ['gc', 'garbage collection'],
  ['engine', 'engine JS'],
  ['mainJs', 'main thread JS (not split: no profile)'],
  ['other', 'other'],
  ['outsideOrt', 'outside onnxruntime'],
  ['total', 'server total'],
] as const;

export type RowKey = (typeof ROWS)[number][0];
export type Breakdown = Record<RowKey, number>;

const sum = (xs: Iterable<number>): number => [...xs].reduce((s, x) => s + x, 0);
const isDecoderKind = (k: string): boolean => k !== 'encoder' && k !== 'draft:encoder';

export function breakdown(level: LevelCpu, mainShares?: Shares): Breakdown {
  const g = (name: string): number => level.byGroup[name] ?? 0;
  const ortOf = (pick: (k: string) => boolean): number => sum(Object.entries(level.ort).filter(([k]) => pick(k)).map(([, v]) => v));
  const ortIn = (group: string, pick: (k: string) => boolean = () => true): number => sum(Object.entries(level.ortByGroup[group] ?? {}).filter(([k]) => pick(k)).map(([, v]) => v));
  const ortEncoder = ortOf((k) => !isDecoderKind(k));
  const ortPrefill = ortOf((k) => k === 'prefill');
  const ortDecode = ortOf((k) => isDecoderKind(k) && k !== 'prefill');
  // Threads of no known kind: in the transformers.js server, onnxruntime's intra-op pools
  // (its default sessions spawn and spin them; Iris runs one intra-op thread per session).
  // The probe cannot see what they do, so they count outside onnxruntime (conservatively).
  const otherThreads = g('other');
  const ort = ortEncoder + ortPrefill + ortDecode;
  // Worker threads: whatever onnxruntime kind dominates there names their JS time.
  const workerRest = Math.max(0, g('worker') - ortIn('worker'));
  const workerIsImage = ortIn('worker', (k) => !isDecoderKind(k)) >= ortIn('worker', isDecoderKind);
  const mainRest = Math.max(0, g('main') - ortIn('main'));
  const share = (k: keyof Shares): number => (mainShares ? mainRest * mainShares[k] : 0);
  const image = g('libuv-pool') + g('libvips') + (workerIsImage ? workerRest : 0) + share('image');
  const http = share('http');
  const gc = g('v8-platform+startup') + share('gc');
  const engine = (workerIsImage ? 0 : workerRest) + share('engine');
  const mainJs = mainShares ? 0 : mainRest;
  const total = level.threadsTotal;
  const other = Math.max(0, total - ort - otherThreads - image - http - gc - engine - mainJs);
  return { ortEncoder, ortPrefill, ortDecode, ort, otherThreads, image, http, gc, engine, mainJs, other, outsideOrt: total - ort, total };
}
