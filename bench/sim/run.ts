// `npm run sim`: the seeded discrete-event simulation of Iris scaled out. Checks itself
// against the 3-replica trials first (scale-out.md §4), then predicts what this machine
// cannot show. Every figure it prints is simulated; it writes bench/results/sim-<date>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { idealPoolHitShare, ROUTINGS, simulateCache, type Routing } from './cache.ts';
import { COSTS, DEPLOY } from './costs.ts';
import { simulateRollout, type RolloutOptions } from './rollout.ts';
import { replicasNeeded, simulateServe } from './serve.ts';

const SEED = Number(process.env.IRIS_SIM_SEED ?? 1);
const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;
const LOCAL_ENTRIES = Math.floor(DEPLOY.embeddingCacheBytes / COSTS.embeddingBytes);
const SHARED_ENTRIES = Math.floor(DEPLOY.redisMaxBytes / COSTS.embeddingBytes);

function table(title: string, head: string[], rows: Array<Array<string | number>>): void {
  console.log(`\n${title}`);
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of cells.slice(1)) console.log(line(r));
}

const started = Date.now();
console.log(`Iris scale-out simulation (seed ${SEED}). ALL FIGURES BELOW ARE SIMULATED, not measured,`);
console.log(`except the column marked "measured", copied from ../shared/docs/scale-out.md §4.`);
console.log(`Inputs: ${COSTS.source}: ${COSTS.cpuMsAlone.toFixed(2)} ms CPU/request alone, ${COSTS.cpuMsBatched.toFixed(2)} ms at batch 32, encoder ${COSTS.encoderMs.toFixed(2)} ms.`);

// 1. Check against the trials: 900 requests, 80 % from 200 popular images, 3 replicas.
const trial = { kind: 'pool', pool: 200, popularShare: 0.8 } as const;
const trialCache = (routing: Routing, timeouts = 0) =>
  simulateCache({ seed: SEED, replicas: 3, requests: 900, workload: trial, routing, localEntries: LOCAL_ENTRIES, sharedEntries: SHARED_ENTRIES, sharedTimeoutShare: timeouts });
// Loss trials: 16 closed-loop clients at the ~35 rps the loaded machine delivered through
// 3 replicas (30.1–37.8 rps measured), so a request takes 16/35 s; HAProxy takes a replica
// out after inter 500 ms × fall 2.
// Each is the mean over 20 seeds of one event's losses.
const SEEDS = Array.from({ length: 20 }, (_, i) => SEED + i);
const lossTrial = (stop: RolloutOptions['stop'], retries: boolean) => {
  const runs = SEEDS.map((seed) => simulateRollout({ seed, replicas: 3, rateRps: 35, meanDurationS: 16 / 35, longestS: 5, stop, retries, detectS: COSTS.checkDetectS, drainDelayS: COSTS.drainDelayS, drainTimeoutS: COSTS.drainTimeoutS, graceS: 30, event: 'one' }));
  return { lostPerEvent: runs.reduce((s, r) => s + r.lost, 0) / runs.length, maxLost: Math.max(...runs.map((r) => r.lost)), runs: runs.length };
};
type Loss = ReturnType<typeof lossTrial>;
const lossText = (r: Loss): string => `${r.lostPerEvent.toFixed(1)} lost per event simulated (mean of ${r.runs} seeds, max ${r.maxLost})`;
const check = {
  rrLocal: trialCache('rr-local').hitShare,
  rrRedis: trialCache('rr-redis', 73 / 590).hitShare,
  hashLocal: trialCache('hash-local'),
  ideal: idealPoolHitShare(900, 200, 0.8),
  kill: lossTrial('kill', false),
  killRetries: lossTrial('kill', true),
  term: lossTrial('shipped', false),
  drain: lossTrial('drain', false),
};
table('Check against the 3-replica trials (simulated vs measured)', ['event / routing', 'measured (scale-out.md §4)', 'simulated'], [
  ['hit share, round robin, local caches', '34.6 %', `${pct(check.rrLocal)} simulated`],
  ['hit share, round robin + Redis (12 % lookups timed out)', '56.6 %', `${pct(check.rrRedis)} simulated`],
  ['hit share, consistent hash on image key', '59.1 %', `${pct(check.hashLocal.hitShare)} simulated`],
  ['hit share, ideal global cache', '≈ 58 %', `${pct(check.ideal)} simulated (expected value)`],
  ['hash routing load max/mean', '1.13', `${check.hashLocal.loadSkew.toFixed(2)} simulated`],
  ['kill -9 one of 3, no retries', '17 lost (of 528)', lossText(check.kill)],
  ['kill -9 one of 3, retry-on + redispatch', '0 lost (of 819)', lossText(check.killRetries)],
  ['SIGTERM, Iris as shipped, no retries', '18 lost (of 615)', lossText(check.term)],
  ['SIGTERM, drain 1.5 s / 20 s, no retries', '0 lost (of 744)', lossText(check.drain)],
]);

// 2. Replicas needed for a throughput at a p95 target (1 core per replica, as requested in deploy/k8s/iris.yaml).
const sizing: Array<{ rateRps: number; p95TargetMs: number; replicas: number; p95Ms: number }> = [];
for (const rateRps of [100, 300, 1000, 3000]) {
  for (const p95TargetMs of [50, 200]) {
    const r = replicasNeeded({ seed: SEED, rateRps, p95Ms: p95TargetMs });
    sizing.push({ rateRps, p95TargetMs, ...r });
  }
}
table('Replicas needed (1 core each, shapes-base mix, no cache hits) — simulated', ['req/s', 'p95 target', 'replicas (simulated)', 'p95 at that count (simulated)'],
  sizing.map((s) => [s.rateRps, `${s.p95TargetMs} ms`, s.replicas, `${s.p95Ms.toFixed(1)} ms`]));

// 3. Hit share against replicas and Zipf skew, per routing.
const hits: Array<{ replicas: number; s: number; routing: Routing; hitShare: number; loadSkew: number }> = [];
for (const replicas of [3, 10, 30]) {
  for (const s of [0.6, 0.9, 1.2]) {
    for (const routing of ROUTINGS) {
      const r = simulateCache({ seed: SEED, replicas, requests: 200_000, workload: { kind: 'zipf', catalog: 100_000, s }, routing, localEntries: LOCAL_ENTRIES, sharedEntries: SHARED_ENTRIES });
      hits.push({ replicas, s, routing, hitShare: r.hitShare, loadSkew: r.loadSkew });
    }
  }
}
table(`Embedding-cache hit share, Zipf(s) over 100 000 images, 200 000 requests, ${LOCAL_ENTRIES} entries local, ${SHARED_ENTRIES} in Redis — simulated`,
  ['replicas', 'zipf s', ...ROUTINGS.map((r) => `${r} (simulated)`), 'hash load max/mean, no balance factor (simulated)'],
  [3, 10, 30].flatMap((replicas) => [0.6, 0.9, 1.2].map((s) => {
    const row = hits.filter((h) => h.replicas === replicas && h.s === s);
    return [replicas, s, ...ROUTINGS.map((r) => pct(row.find((h) => h.routing === r)!.hitShare)), row.find((h) => h.routing === 'hash-local')!.loadSkew.toFixed(2)];
  })));

// 4. Requests lost in a rolling update of 10 replicas at 200 req/s; requests average 0.3 s,
// and 2 % are streams lasting up to 10 s (assumptions).
const base = { seed: SEED, replicas: 10, rateRps: 200, meanDurationS: 0.3, longestS: 10, longShare: 0.02, detectS: COSTS.checkDetectS, event: 'rolling', readyS: COSTS.readyWarmS } as const;
const rollouts: Array<{ name: string } & ReturnType<typeof simulateRollout>> = [];
const rollout = (name: string, o: Partial<RolloutOptions> & Pick<RolloutOptions, 'stop' | 'retries'>) => rollouts.push({ name, ...simulateRollout({ ...base, ...o }) });
rollout('no drain (Iris as shipped), no retries', { stop: 'shipped', retries: false });
rollout('no drain, HAProxy retries (30 % not replayable)', { stop: 'shipped', retries: true, unretriableShare: 0.3 });
rollout('drain delay 1.5 s, timeout 20 s, grace 70 s', { stop: 'drain', retries: false, drainDelayS: 1.5, drainTimeoutS: 20, graceS: 70 });
rollout('drain delay 0.5 s (< 1 s detection), timeout 20 s', { stop: 'drain', retries: false, drainDelayS: 0.5, drainTimeoutS: 20, graceS: 70 });
rollout('drain delay 1.5 s, timeout 5 s (< longest 10 s)', { stop: 'drain', retries: false, drainDelayS: 1.5, drainTimeoutS: 5, graceS: 70 });
rollout('drain delay 1.5 s, timeout 20 s, grace 5 s', { stop: 'drain', retries: false, drainDelayS: 1.5, drainTimeoutS: 20, graceS: 5 });
table('Rolling update of 10 replicas at 200 req/s (mean request 0.3 s, 2 % streams up to 10 s) — simulated', ['stop settings', 'requests (simulated)', 'lost (simulated)', 'retried (simulated)'],
  rollouts.map((r) => [r.name, r.requests, r.lost, r.retried]));

// 5. Scale-up lag against bursts: 4 replicas at 60 % load, a burst of k× for 120 s at t = 30 s, KEDA on queue depth.
const capacity = 1000 / COSTS.cpuMsBatched; // req/s per 1-core replica at full batches
const bursts: Array<{ factor: number; startS: number; lagS: number; rejected: number; p95Ms: number; replicas: number }> = [];
for (const startS of [COSTS.readyWarmS, COSTS.readyColdS]) {
  for (const factor of [2, 4, 8]) {
    const baseRate = 4 * capacity * 0.6;
    const r = simulateServe({
      seed: SEED, replicas: 4, durationS: 150, warmupS: 5,
      rate: (t) => (t >= 30 && t < 150 ? baseRate * factor : baseRate),
      autoscale: { pollS: DEPLOY.kedaPollS, threshold: DEPLOY.kedaThreshold, startS, max: 200 },
      window: { from: 30, to: 150 },
    });
    bursts.push({ factor, startS, lagS: r.scaleUpLagS, rejected: r.windowRejected, p95Ms: r.windowP95Ms, replicas: r.replicasAtEnd });
  }
}
table(`Bursts on 4 replicas at 60 % load (${(4 * capacity * 0.6).toFixed(0)} req/s), KEDA poll ${DEPLOY.kedaPollS} s, threshold ${DEPLOY.kedaThreshold} — simulated`,
  ['burst', 'pod start to ready', 'last scale-up ready after (simulated)', 'refused in burst (simulated)', 'p95 in burst (simulated)', 'replicas at end (simulated)'],
  bursts.map((b) => [`×${b.factor}`, `${b.startS} s`, `${b.lagS.toFixed(0)} s`, b.rejected, `${b.p95Ms.toFixed(0)} ms`, b.replicas]));

const out = join(dirname(fileURLToPath(import.meta.url)), '../results', `sim-${new Date().toISOString().slice(0, 10)}.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ simulated: true, seed: SEED, inputs: { COSTS, DEPLOY }, check, sizing, hits, rollouts, bursts }, null, 2));
console.log(`\nwrote ${out} (simulated figures, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
