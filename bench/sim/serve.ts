// Replicas serving an open stream of requests: each replica runs up to maxBatchSize rows
// together, sharing its cores (processor sharing; a row never gets more than one core),
// with the per-request CPU cost measured at batch 1 and batch 32 (costs.ts); the rest wait
// in line (iris_engine_queue_depth) up to maxQueued, beyond which requests are refused
// (OVERLOADED). The balancer sends each request to the replica with the fewest requests
// (HAProxy leastconn). Optionally KEDA polls the summed queue depth and adds replicas (limited
// by the HPA's default scale-up policy), each ready `startS` after it is asked for.
// Request sizes (in units of a mean request's CPU) are 0.5 + exponential(0.5): an
// assumption, standing in for the mix of short captions and longer answers.
import { COSTS, cpuMsPerRequest, DEPLOY } from './costs.ts';
import { createRng, EventQueue } from './rng.ts';

export interface ServeOptions {
  readonly seed: number;
  readonly replicas: number;
  readonly cores?: number;
  readonly durationS: number;
  /** Requests per second at time t (seconds). */
  readonly rate: (t: number) => number;
  /** Only requests arriving after this count towards latency. */
  readonly warmupS?: number;
  /** Share of requests whose image embedding is cached (saves the encoder's CPU). */
  readonly hitShare?: number;
  readonly autoscale?: { readonly pollS: number; readonly threshold: number; readonly startS: number; readonly max: number };
  /** Latency is also recorded separately for arrivals in [from, to). */
  readonly window?: { readonly from: number; readonly to: number };
}

export interface ServeResult {
  readonly arrived: number;
  readonly completed: number;
  readonly rejected: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly windowP95Ms: number;
  readonly windowRejected: number;
  readonly peakQueue: number;
  readonly replicasAtEnd: number;
  /** Seconds from window.from until the last replica asked for during the window was ready. */
  readonly scaleUpLagS: number;
}

interface Job {
  readonly arrival: number;
  remaining: number;
}

interface Replica {
  readonly running: Job[];
  readonly waiting: Job[];
  last: number;
  version: number;
}

type Ev = { kind: 'arrive' } | { kind: 'done'; r: number; version: number } | { kind: 'poll' } | { kind: 'ready' };

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export function simulateServe(o: ServeOptions): ServeResult {
  const rng = createRng(o.seed);
  const cores = o.cores ?? DEPLOY.coresPerReplica;
  const hitSaves = (o.hitShare ?? 0) * COSTS.encoderMs;
  const replicas: Replica[] = [];
  const addReplica = (t: number): void => void replicas.push({ running: [], waiting: [], last: t, version: 0 });
  for (let i = 0; i < o.replicas; i++) addReplica(0);
  const events = new EventQueue<Ev>();
  const rowRate = (n: number): number => Math.min(n, cores) / n / (cpuMsPerRequest(n) - hitSaves) * 1000; // units per second per row

  const advance = (rep: Replica, t: number): void => {
    const n = rep.running.length;
    if (n > 0) {
      const done = (t - rep.last) * rowRate(n);
      for (const job of rep.running) job.remaining -= done;
    }
    rep.last = t;
  };
  const latencies: number[] = [];
  const windowLatencies: number[] = [];
  let completed = 0;
  let rejected = 0;
  let windowRejected = 0;
  let peakQueue = 0;
  const inWindow = (a: number): boolean => o.window !== undefined && a >= o.window.from && a < o.window.to;
  const schedule = (r: number, t: number): void => {
    const rep = replicas[r];
    rep.version++;
    if (rep.running.length === 0) return;
    const min = Math.min(...rep.running.map((j) => j.remaining));
    events.push(t + Math.max(0, min) / rowRate(rep.running.length), { kind: 'done', r, version: rep.version });
  };

  let pending = 0;
  let lastAskedReady = o.window?.from ?? 0;
  events.push(rng.exp(1 / o.rate(0)), { kind: 'arrive' });
  if (o.autoscale) events.push(o.autoscale.pollS, { kind: 'poll' });
  let arrived = 0;
  for (let ev = events.pop(); ev && ev.t < o.durationS; ev = events.pop()) {
    const t = ev.t;
    const v = ev.v;
    if (v.kind === 'arrive') {
      arrived++;
      events.push(t + rng.exp(1 / o.rate(t)), { kind: 'arrive' });
      let best = 0;
      let bestLoad = Infinity;
      const start = rng.int(replicas.length);
      for (let k = 0; k < replicas.length; k++) {
        const i = (start + k) % replicas.length;
        const load = replicas[i].running.length + replicas[i].waiting.length;
        if (load < bestLoad) [best, bestLoad] = [i, load];
      }
      const rep = replicas[best];
      const job: Job = { arrival: t, remaining: 0.5 + rng.exp(0.5) };
      advance(rep, t);
      if (rep.running.length < DEPLOY.maxBatchSize) rep.running.push(job);
      else if (rep.waiting.length < DEPLOY.maxQueued) rep.waiting.push(job);
      else {
        rejected++;
        if (inWindow(t)) windowRejected++;
        continue;
      }
      schedule(best, t);
    } else if (v.kind === 'done') {
      const rep = replicas[v.r];
      if (v.version !== rep.version) continue;
      advance(rep, t);
      for (let i = rep.running.length - 1; i >= 0; i--) {
        const job = rep.running[i];
        if (job.remaining > 1e-9) continue;
        rep.running.splice(i, 1);
        completed++;
        if (job.arrival >= (o.warmupS ?? 0)) latencies.push((t - job.arrival) * 1000);
        if (inWindow(job.arrival)) windowLatencies.push((t - job.arrival) * 1000);
      }
      while (rep.running.length < DEPLOY.maxBatchSize && rep.waiting.length > 0) rep.running.push(rep.waiting.shift()!);
      schedule(v.r, t);
    } else if (v.kind === 'poll') {
      const a = o.autoscale!;
      events.push(t + a.pollS, { kind: 'poll' });
      const depth = replicas.reduce((s, r) => s + r.waiting.length, 0);
      peakQueue = Math.max(peakQueue, depth);
      // KEDA's AverageValue target, through the HPA's default scale-up policy: at most
      // double, or 4 pods more, per 15 s period.
      const current = replicas.length + pending;
      const desired = Math.min(a.max, Math.max(current * 2, current + 4), Math.max(current, Math.ceil(depth / a.threshold)));
      for (let k = replicas.length + pending; k < desired; k++) {
        pending++;
        events.push(t + a.startS, { kind: 'ready' });
        if (inWindow(t)) lastAskedReady = Math.max(lastAskedReady, t + a.startS);
      }
    } else {
      pending--;
      addReplica(t);
    }
  }
  latencies.sort((a, b) => a - b);
  windowLatencies.sort((a, b) => a - b);
  return {
    arrived,
    completed,
    rejected,
    p50Ms: percentile(latencies, 0.5),
    p95Ms: percentile(latencies, 0.95),
    windowP95Ms: percentile(windowLatencies, 0.95),
    windowRejected,
    peakQueue,
    replicasAtEnd: replicas.length + pending,
    scaleUpLagS: lastAskedReady - (o.window?.from ?? 0),
  };
}

/** The fewest replicas whose simulated p95 stays within target, with nothing refused. */
export function replicasNeeded(o: { seed: number; rateRps: number; p95Ms: number; cores?: number; durationS?: number; hitShare?: number }): { replicas: number; p95Ms: number } {
  const cores = o.cores ?? DEPLOY.coresPerReplica;
  let n = Math.max(1, Math.ceil((o.rateRps * COSTS.cpuMsBatched) / 1000 / cores));
  for (;; n++) {
    const r = simulateServe({ seed: o.seed, replicas: n, cores, durationS: o.durationS ?? 20, warmupS: 5, rate: () => o.rateRps, hitShare: o.hitShare });
    if (r.rejected === 0 && r.p95Ms <= o.p95Ms) return { replicas: n, p95Ms: r.p95Ms };
    if (n > 10_000) throw new Error('no replica count meets the target');
  }
}
