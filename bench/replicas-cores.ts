// npm run bench:cores [-- --model DIR --rounds N --requests N --clients N]
// Does throughput grow with replicas, one core each, as bench/sim assumes
// (costs.ts `coresPerReplica: 1`)? Measured on this machine: replica A pinned to core 0
// (`taskset -c 0`), replica B to core 1 (`taskset -c 1`), each started as `npm start`
// starts Iris (bin/serve.js, npm start's environment) with `--threads 1 --image-workers 1`
// (the defaults: one onnxruntime intra-op thread; the image worker thread shares the
// pinned core, as do libuv and GC threads). Both run throughout; rounds alternate
// (1, 2, 2, 1, 1, 2, …) between
//   1 replica:  `clients` closed-loop clients (captions, distinct images: no cache hits) on A
//   2 replicas: the same clients, requests round-robin over A and B
// (--balance least: to the replica with the fewest requests in flight, as bench/sim's
// balancer does.) First and last, the machine's own ceiling: a CPU-bound loop on core 0
// alone against one on each core at once.
// The load client is pinned nowhere (it shares the two cores; its CPU per request is
// recorded). Writes JSON to bench/results/local/ (bench/results/ with IRIS_BENCH_UPDATE=1).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../src/model/load.ts';
import { distinctRequests, irisSender, runLevel, type LoadOptions, type Send } from './load-client.ts';
import { simulatedRequestsPerSecond, summarizeCores, type CoresRound } from './replicas-cores-summary.ts';
import { resultsDir, shown } from './results-dir.ts';
import { npmStartEnv, startIrisProcess } from './start-env.ts';

const { values } = parseArgs({ options: {
  model: { type: 'string' }, rounds: { type: 'string' }, requests: { type: 'string' }, clients: { type: 'string' }, balance: { type: 'string' },
} });
/** rr: requests round-robin over the replicas (HAProxy `balance roundrobin`); least: to the replica with the fewest in flight (`leastconn`, what bench/sim assumes). */
const balance = values.balance ?? 'rr';
if (balance !== 'rr' && balance !== 'least') throw new Error('--balance rr|least');
const modelDir = resolve(values.model ?? DEFAULT_MODEL_DIR);
const rounds = Number(values.rounds ?? 4);
const perRound = Number(values.requests ?? 480);
const clients = Number(values.clients ?? 16);
const OPTIONS: LoadOptions = { maxNewTokens: 24 };
const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

if (cpus().length < 2) throw new Error('bench:cores needs 2 cores');

const uptime = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();
/** Processes of other benchmarks or test runs (the machine should be quiet). */
const others = (): string => {
  try {
    return execFileSync('pgrep', ['-af', 'soak.ts|vitest|bench.ts'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};
const cpuMs = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime
};
const allowed = (pid: number): string => /Cpus_allowed_list:\s+(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';

const before = { uptime: uptime(), loadavg: loadavg(), others: others() };
const spinBefore = spin();
console.log(`bench:cores: ${basename(modelDir)}, ${rounds} rounds × ${perRound} captions per configuration, ${clients} clients, balance ${balance}; ${before.uptime}`);
console.log(`machine ceiling (a CPU loop, no Iris): 1 core ${spinBefore.alone.toFixed(2)} s, 2 cores at once ${spinBefore.together.toFixed(2)} s: ${spinBefore.ratio.toFixed(2)}× the work per second`);
if (before.others) console.warn(`bench:cores: other benchmarks running, figures will be disturbed:\n${before.others}`);

const args = (): string[] => ['bin/serve.js', '--port', '0', '--model', `m=${modelDir}`, '--threads', '1', '--image-workers', '1'];
const env = { ...process.env, ...npmStartEnv() };
const replicas = [];
for (const core of [0, 1]) replicas.push({ core, ...(await startIrisProcess(args(), env, ['taskset', '-c', String(core)])) });
const pinned = replicas.map((r) => ({ core: r.core, pid: r.child.pid!, cpusAllowed: allowed(r.child.pid!), url: r.url }));
console.log(`replicas: ${pinned.map((p) => `pid ${p.pid} on cores ${p.cpusAllowed} at ${p.url}`).join('; ')}`);

const requests = distinctRequests();
const senders = replicas.map((r) => irisSender(r.url));
const inFlight = senders.map(() => 0);
const dispatch = (n: number): Send => {
  let i = 0;
  return async (request, options) => {
    const k = balance === 'rr' ? i++ % n : inFlight.slice(0, n).indexOf(Math.min(...inFlight.slice(0, n)));
    inFlight[k]++;
    try {
      return await senders[k](request, options);
    } finally {
      inFlight[k]--;
    }
  };
};

/** The machine's own ceiling: a CPU-bound loop (no Iris) pinned to core 0 alone, then one on each core at once; wall seconds. */
function spin(): { alone: number; together: number; ratio: number } {
  const loop = 'let x = 0; for (let i = 0; i < 1.5e8; i++) x = (x * 1.0000001 + i) % 1e9; if (x < 0) console.log(x);';
  const run = (cores: number[]): number => {
    const t = performance.now();
    execFileSync('sh', ['-c', cores.map((c) => `taskset -c ${c} ${process.execPath} -e '${loop}' &`).join(' ') + ' wait']);
    return (performance.now() - t) / 1000;
  };
  const alone = run([0]);
  const together = run([0, 1]);
  return { alone, together, ratio: (2 * alone) / together };
}

const measured: CoresRound[] = [];
try {
  for (const n of [1, 2]) await runLevel(dispatch(n), clients, requests(64), OPTIONS); // JIT, first allocations
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? [1, 2] : [2, 1];
    for (const n of order) {
      const client0 = process.cpuUsage();
      const replica0 = pinned.map((p) => cpuMs(p.pid));
      const level = await runLevel(dispatch(n), clients, requests(perRound), OPTIONS);
      const client = process.cpuUsage(client0);
      const replicaCpu = pinned.map((p, i) => cpuMs(p.pid) - replica0[i]);
      const r: CoresRound = {
        replicas: n, round, requests: level.requests, failed: level.failed, seconds: level.seconds,
        requestsPerSecond: level.requestsPerSecond, latencyMs: level.latencyMs,
        clientCpuMsPerRequest: (client.user + client.system) / 1000 / level.requests,
        replicaCpuMsPerRequest: replicaCpu.map((ms) => ms / level.requests),
      };
      measured.push(r);
      console.log(`round ${round}, ${n} replica${n > 1 ? 's' : ' '}: ${r.requestsPerSecond.toFixed(1)} req/s, p50 ${r.latencyMs.p50.toFixed(0)} ms, p95 ${r.latencyMs.p95.toFixed(0)} ms, ` +
        `CPU/request replicas ${r.replicaCpuMsPerRequest.map((x) => x.toFixed(1)).join(' + ')} ms, client ${r.clientCpuMsPerRequest.toFixed(1)} ms${r.failed ? `, FAILED ${r.failed} (${level.firstError})` : ''}; load ${loadavg()[0].toFixed(2)}`);
    }
  }
} finally {
  for (const r of replicas) r.child.kill('SIGTERM');
}

const summary = summarizeCores(measured);
const sim = { replicas1: simulatedRequestsPerSecond(1, clients), replicas2: simulatedRequestsPerSecond(2, clients) };
const after = { uptime: uptime(), loadavg: loadavg(), others: others() };
const spinAfter = spin();
console.log(`machine ceiling after: ${spinAfter.ratio.toFixed(2)}×`);
console.log('\n| replicas (cores) | req/s median (min–max) | p50 | p95 | replica CPU/req | client CPU/req |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const c of summary.configs) {
  console.log(`| ${c.replicas} (${c.replicas === 1 ? '0' : '0, 1'}) | ${c.requestsPerSecond.median.toFixed(1)} (${c.requestsPerSecond.min.toFixed(1)}–${c.requestsPerSecond.max.toFixed(1)}) | ${c.p50Ms.toFixed(0)} ms | ${c.p95Ms.toFixed(0)} ms | ${c.replicaCpuMsPerRequest.toFixed(1)} ms | ${c.clientCpuMsPerRequest.toFixed(1)} ms |`);
}
console.log(`\n2/1 throughput ratio: ${summary.throughputRatio.toFixed(2)} measured (rounds: ${summary.roundRatios.map((x) => x.toFixed(2)).join(', ')}); ` +
  `bench/sim's model: ${(sim.replicas2 / sim.replicas1).toFixed(2)} simulated (${sim.replicas1.toFixed(0)} → ${sim.replicas2.toFixed(0)} req/s simulated, its own costs)`);
console.log(`load: before ${before.uptime}\n      after  ${after.uptime}`);

const date = new Date().toISOString().slice(0, 10);
const out = join(resultsDir(), `replicas-cores-${basename(modelDir)}${balance === 'rr' ? '' : `-${balance}`}-${date}.json`);
writeFileSync(out, JSON.stringify({
  model: basename(modelDir), date, cores: cpus().length, clients, balance, requestsPerRound: perRound, options: OPTIONS,
  machineCeiling: { note: 'a CPU-bound loop pinned to core 0 alone, then one on each core at once: 2 × alone / together', before: spinBefore, after: spinAfter },
  replicaArgs: args(), env: npmStartEnv(), pinned: pinned.map(({ url: _url, ...p }) => p), clientPinned: false,
  before, after, rounds: measured, summary,
  simulated: { note: 'bench/sim model (costs.ts, serve.ts), closed loop, mean request; simulated, not measured', ...sim, ratio: sim.replicas2 / sim.replicas1 },
}, null, 2));
console.log(`wrote ${shown(out)}`);
