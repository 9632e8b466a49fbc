// npx tsx bench/perf/gc-rounds.ts [--servers 4] [--rounds 4] [--n 256] [--idle-ms 3000]
//   ['--configs=|--heap-growing-percent 0'] ['--node=--trace-incremental-marking'] (values that start with a dash take =)
// How V8's collections behave in a loaded Iris, server after server: each config (a '|'
// list of extra server flags; '' is the defaults) gets --servers fresh servers, taking
// turns. Each server gets the benchmark's steady-state warm-up (1,024 captions at c32, 128
// at c1), then --rounds rounds of 96 captions at one client, --idle-ms idle, and --n
// captions at 32 clients, which are measured: server CPU per caption outside onnxruntime,
// V8's background threads' share, and, from the server's --trace-gc lines, its scavenges
// and Mark-Compacts. Ends with each config's median, worst round, rounds in back-to-back
// full collections (5 or more Mark-Compacts) and peak RSS. Found the case for
// --heap-growing-percent (src/server/memory/heap-growing.ts).
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../../src/model/load.ts';
import { distinctRequests, irisSender, runLevel } from '../load-client.ts';
import { diff, snapshot } from './proc-cpu.ts';
import { peakRssMb, startIris, stop } from './servers.ts';

const { values } = parseArgs({ options: {
  servers: { type: 'string' }, rounds: { type: 'string' }, n: { type: 'string' }, 'idle-ms': { type: 'string' }, configs: { type: 'string' }, node: { type: 'string' },
} });
const servers = Number(values.servers ?? 4);
const rounds = Number(values.rounds ?? 4);
const N = Number(values.n ?? 256);
const idleMs = Number(values['idle-ms'] ?? 3000);
const configs = (values.configs ?? '|--heap-growing-percent 0').split('|').map((c) => c.trim());
const nodeFlags = ['--trace-gc', ...(values.node ?? '').split(' ').filter(Boolean)];
const work = mkdtempSync('/dev/shm/iris-gc-');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const requests = distinctRequests();
const caption = { maxNewTokens: 24 };

interface Round { outside: number; v8: number; scavenges: number; markCompacts: number }

let started = 0;

async function runServer(flags: string): Promise<{ rounds: Round[]; peakRssMb: number }> {
  const name = `gc-${++started}`;
  const server = await startIris(name, DEFAULT_MODEL_DIR, { probeDir: work, nodeFlags }, flags.split(' ').filter(Boolean));
  const log = join(work, `server-${name}.log`); // its stdout: the --trace-gc lines
  try {
    const send = irisSender(server.url);
    await runLevel(send, 32, requests(1024), caption);
    await runLevel(send, 1, requests(128), caption);
    const measured: Round[] = [];
    for (let r = 0; r < rounds; r++) {
      await runLevel(send, 1, requests(96), caption);
      await sleep(idleMs);
      const mark = readFileSync(log).length;
      const before = snapshot(server.pid, work);
      await runLevel(send, 32, requests(N), caption);
      await sleep(600); // the probe writes its totals every 250 ms
      const d = diff(server.pid, before, snapshot(server.pid, work));
      const ort = Object.values(d.ort).reduce((ms, o) => ms + o.cpuMs, 0);
      const trace = readFileSync(log).subarray(mark).toString('latin1');
      measured.push({ outside: (d.processMs - ort) / N, v8: (d.groups['v8-platform+startup'] ?? 0) / N, scavenges: trace.match(/: Scavenge /g)?.length ?? 0, markCompacts: trace.match(/: Mark-Compact /g)?.length ?? 0 });
    }
    return { rounds: measured, peakRssMb: peakRssMb(server.pid) };
  } finally {
    await stop(server);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = configs.map(() => ({ rounds: [] as Round[], peakRssMb: [] as number[] }));
for (let s = 1; s <= servers; s++) {
  for (const [i, flags] of configs.entries()) {
    const run = await runServer(flags);
    results[i].rounds.push(...run.rounds);
    results[i].peakRssMb.push(run.peakRssMb);
    console.log(`server ${s} [${flags || 'defaults'}]: ${run.rounds.map((r) => `outside ${r.outside.toFixed(2)} ms (V8 threads ${r.v8.toFixed(2)}), ${r.scavenges} scavenges, ${r.markCompacts} Mark-Compacts`).join('; ')}; peak RSS ${run.peakRssMb.toFixed(0)} MB`);
  }
}
for (const [i, flags] of configs.entries()) {
  const { rounds: rs, peakRssMb } = results[i];
  const back = rs.filter((r) => r.markCompacts >= 5).length;
  console.log(`[${flags || 'defaults'}] outside onnxruntime at c32: median ${median(rs.map((r) => r.outside)).toFixed(2)}, worst ${Math.max(...rs.map((r) => r.outside)).toFixed(2)} ms per caption; ` +
    `back-to-back full collections in ${back} of ${rs.length} rounds; peak RSS ${Math.min(...peakRssMb).toFixed(0)}-${Math.max(...peakRssMb).toFixed(0)} MB`);
}
