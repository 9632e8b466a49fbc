// Requests lost when replicas go away: kill -9, SIGTERM on a server that closes every
// connection at once (Iris as shipped), or SIGTERM with a drain (flip /ready to 503, keep
// listening for `delay`, then wait up to `timeout` for requests in flight; Kubernetes
// sends SIGKILL at the grace period). The balancer takes a replica out `detect` seconds
// after its /ready stops answering 200 (HAProxy: inter × fall) and, with retries on,
// re-sends refused connections and empty responses elsewhere, except requests it cannot
// replay (bodies over one buffer, responses already started: `unretriableShare`).
// Request durations are exponential with a mean, capped at the longest request, plus an
// optional share of long ones spread evenly up to the longest.
import { createRng } from './rng.ts';

export type Stop = 'kill' | 'shipped' | 'drain';

export interface RolloutOptions {
  readonly seed: number;
  readonly replicas: number;
  readonly rateRps: number;
  readonly meanDurationS: number;
  readonly longestS: number;
  /** Share of long requests (streams, long answers), lasting uniformly up to longestS; the rest are exponential around meanDurationS. */
  readonly longShare?: number;
  readonly stop: Stop;
  readonly drainDelayS?: number;
  readonly drainTimeoutS?: number;
  readonly graceS?: number;
  readonly detectS: number;
  readonly retries: boolean;
  readonly unretriableShare?: number;
  /** 'one': a single replica stops at t = 10 s; 'rolling': each replica is replaced in turn (maxSurge 1, maxUnavailable 0). */
  readonly event: 'one' | 'rolling';
  /** Seconds from a new pod's start to /ready (rolling only). */
  readonly readyS?: number;
}

export interface RolloutResult {
  readonly requests: number;
  readonly lost: number;
  /** Requests the balancer re-sent (work redone). */
  readonly retried: number;
}

interface Replica {
  readonly upFrom: number;
  /** The balancer stops choosing it from here on. */
  downAt: number;
  /** Connections are refused from here on. */
  closesAt: number;
  /** Requests still running are cut here. */
  exitsAt: number;
}

export function simulateRollout(o: RolloutOptions): RolloutResult {
  const rng = createRng(o.seed);
  const replicas: Replica[] = [];
  const stopAt = (r: Replica, t: number): void => {
    r.downAt = t + o.detectS;
    if (o.stop === 'drain') {
      const delay = o.drainDelayS ?? 0;
      const grace = o.graceS ?? Infinity;
      r.closesAt = t + Math.min(delay, grace);
      r.exitsAt = t + Math.min(delay + (o.drainTimeoutS ?? 0), grace);
    } else {
      r.closesAt = t;
      r.exitsAt = t;
    }
  };
  for (let i = 0; i < o.replicas; i++) replicas.push({ upFrom: 0, downAt: Infinity, closesAt: Infinity, exitsAt: Infinity });
  const t0 = 10;
  let end: number;
  if (o.event === 'one') {
    stopAt(replicas[0], t0);
    end = t0 + 30 + o.longestS;
  } else {
    const step = (o.readyS ?? 3) + o.detectS;
    for (let i = 0; i < o.replicas; i++) {
      const at = t0 + (i + 1) * step;
      replicas.push({ upFrom: at, downAt: Infinity, closesAt: Infinity, exitsAt: Infinity });
      stopAt(replicas[i], at);
    }
    end = t0 + (o.replicas + 1) * step + 30 + o.longestS;
  }
  const routable = (t: number): Replica[] => replicas.filter((r) => r.upFrom <= t && t < r.downAt);
  let requests = 0;
  let lost = 0;
  let retried = 0;
  for (let t = rng.exp(1 / o.rateRps); t < end; t += rng.exp(1 / o.rateRps)) {
    requests++;
    const duration = rng.next() < (o.longShare ?? 0) ? rng.next() * o.longestS : Math.min(rng.exp(o.meanDurationS), o.longestS);
    const replayable = rng.next() >= (o.unretriableShare ?? 0);
    let candidates = routable(t);
    let tries = 0;
    for (;;) {
      if (candidates.length === 0) {
        lost++;
        break;
      }
      const r = candidates[rng.int(candidates.length)];
      const failed = t >= r.closesAt || t + duration > r.exitsAt;
      if (!failed) break;
      if (!o.retries || !replayable || tries >= 3) {
        lost++;
        break;
      }
      tries++;
      retried++;
      // HAProxy's redispatch: the retry goes to another server.
      candidates = candidates.filter((c) => c !== r);
    }
  }
  return { requests, lost, retried };
}
