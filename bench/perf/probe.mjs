// A measurement probe, preloaded into any Iris process (server, CLI, benchmark) and into
// the transformers.js baseline, in every thread (bench/perf/servers.ts starts them so):
//   IRIS_PROBE_DIR=/dev/shm/x node --import tsx --import ./bench/perf/probe.mjs src/server.ts ...
// Plain JavaScript on purpose: workers started from eval'd code import it before any
// TypeScript loader is registered in them.
// It wraps onnxruntime-node's native InferenceSession (a subclass swapped into the binding
// before any session exists) and times every session.run in the calling thread's CPU ns
// and wall ns, by kind: encoder, prefill (use_cache_branch 0), decode (1 new token per row),
// verify (several), draft:* for a draft/ model. Only the native call is inside the
// interval: feeds are already ort.Tensors, outputs are the binding's (typed arrays copied
// out of onnxruntime), so the common layer's checks and the caller's tensor building are
// outside. Every 250 ms each thread writes its totals to $IRIS_PROBE_DIR/<pid>-<tid>.json
// (the driver diffs two readings). IRIS_PROBE_ROWS=1 also keeps per-row-count totals.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';
import * as workerThreads from 'node:worker_threads';
import { syncBuiltinESMExports } from 'node:module';
import { readdirSync } from 'node:fs';
import { poolTids, threadCpuNs, tid } from './threadcpu.mjs';

const dir = process.env.IRIS_PROBE_DIR;
if (process.env.IRIS_PROBE_DEBUG) process.stderr.write(`probe: loaded in ${isMainThread ? 'main' : 'worker'} thread\n`);
const require = createRequire(join(process.cwd(), 'package.json'));
const bindingModule = require('onnxruntime-node/dist/binding.js');
const Native = bindingModule.binding.InferenceSession;

/** CPU ns the two threadCpuNs() calls around an empty interval add to it (subtracted per call). */
function calibrate() {
  const xs = [];
  for (let i = 0; i < 2000; i++) {
    const a = threadCpuNs();
    const b = threadCpuNs();
    xs.push(b - a);
  }
  xs.sort((a, b) => a - b);
  return xs[xs.length >> 1];
}
const overheadNs = calibrate();

const totals = {}; // kind -> { calls, rows, tokens, cpuNs, wallNs, byRows? }
const keepRows = process.env.IRIS_PROBE_ROWS === '1';

function kindOf(path, feeds) {
  const prefix = /[\\/]draft[\\/]/.test(path) ? 'draft:' : '';
  if (feeds.pixel_values) return { kind: prefix + 'encoder', rows: feeds.pixel_values.dims[0], tokens: 0 };
  const ids = feeds.input_ids;
  const rows = ids ? ids.dims[0] : 0;
  const seq = ids ? ids.dims[1] : 0;
  const branch = feeds.use_cache_branch ? feeds.use_cache_branch.data[0] : 1;
  const kind = !branch ? 'prefill' : seq > 1 ? 'verify' : 'decode';
  return { kind: prefix + kind, rows, tokens: rows * seq };
}

class TimedSession extends Native {
  loadModel(...args) {
    this.probePath = typeof args[0] === 'string' ? args[0] : '(buffer)';
    return super.loadModel(...args);
  }

  run(feeds, fetches, options) {
    const wall0 = performance.now();
    const cpu0 = threadCpuNs();
    const out = super.run(feeds, fetches, options);
    const cpuNs = threadCpuNs() - cpu0 - overheadNs;
    const wallNs = (performance.now() - wall0) * 1e6;
    const { kind, rows, tokens } = kindOf(this.probePath ?? '', feeds);
    const t = (totals[kind] ??= { calls: 0, rows: 0, tokens: 0, cpuNs: 0, wallNs: 0 });
    t.calls++;
    t.rows += rows;
    t.tokens += tokens;
    t.cpuNs += cpuNs;
    t.wallNs += wallNs;
    if (keepRows) {
      const b = ((t.byRows ??= {})[rows] ??= { calls: 0, cpuNs: 0, wallNs: 0 });
      b.calls++;
      b.cpuNs += cpuNs;
      b.wallNs += wallNs;
    }
    if (dir && performance.now() - lastDumpAt > 250) dump();
    return out;
  }
}
bindingModule.binding.InferenceSession = TimedSession;

const me = { pid: process.pid, tid: tid(), threadId, isMainThread, overheadNs };
if (isMainThread) {
  // --import preloads do not run in workers started from CommonJS eval code (Iris's image
  // worker bootstrap), so such workers import the probe first.
  const Base = workerThreads.Worker;
  const probeUrl = import.meta.url;
  class ProbedWorker extends Base {
    constructor(code, options) {
      if (options?.eval && typeof code === 'string') code = `import(${JSON.stringify(probeUrl)}).then(() => {\n${code}\n});`;
      super(code, options);
    }
  }
  workerThreads.default.Worker = ProbedWorker;
  syncBuiltinESMExports();
  // Threads that exist before the app starts (V8 platform workers and the like), then
  // libuv's threadpool (sharp's decode/resize run there, for the main thread and workers).
  me.startupTids = readdirSync('/proc/self/task').map(Number);
  poolTids().then((tids) => (me.poolTids = tids));
}
let lastWritten = '';
let lastDumpAt = 0;
function dump() {
  if (!dir) return;
  lastDumpAt = performance.now();
  const text = JSON.stringify({ ...me, cpuNs: threadCpuNs(), totals });
  if (text === lastWritten) return;
  lastWritten = text;
  const file = join(dir, `${me.pid}-${me.tid}.json`);
  writeFileSync(`${file}.tmp`, text); // renamed: a reader never sees half a file
  renameSync(`${file}.tmp`, file);
}
if (dir) {
  mkdirSync(dir, { recursive: true });
  dump();
  setInterval(dump, 250).unref();
  process.on('exit', dump);
}

/** For in-process drivers: this thread's totals right now. */
export function probeTotals() {
  return { ...me, cpuNs: threadCpuNs(), totals: structuredClone(totals) };
}
