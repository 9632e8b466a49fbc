// The pure part of bench/replicas-cores.ts: rounds of one configuration (1 replica on
// core 0, or 2 replicas on cores 0 and 1) summed up as medians over rounds, the
// 2-replica/1-replica throughput ratio, and what bench/sim's model predicts for the same
// closed loop (costs.ts: a replica of `cores` cores runs its rows together at
// cpuMsPerRequest(rows) each, so throughput grows with replicas).
import { cpuMsPerRequest, DEPLOY } from './sim/costs.ts';
import { median } from './measure.ts';

export interface CoresRound {
  replicas: number;
  round: number;
  requests: number;
  failed: number;
  seconds: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p95: number };
  /** CPU the load client (this process) used, ms per request. */
  clientCpuMsPerRequest: number;
  /** CPU each replica used (utime + stime), ms per request served by all replicas. */
  replicaCpuMsPerRequest: number[];
}

export interface CoresConfigSummary {
  replicas: number;
  rounds: number;
  requestsPerSecond: { median: number; min: number; max: number };
  p50Ms: number;
  p95Ms: number;
  failed: number;
  clientCpuMsPerRequest: number;
  replicaCpuMsPerRequest: number;
}

export interface CoresSummary {
  configs: CoresConfigSummary[];
  /** Median 2-replica requests/s over median 1-replica requests/s. */
  throughputRatio: number;
  /** The same ratio round by round (k-th 2-replica round over k-th 1-replica round). */
  roundRatios: number[];
}

export function summarizeConfig(rounds: readonly CoresRound[]): CoresConfigSummary {
  const rps = rounds.map((r) => r.requestsPerSecond);
  return {
    replicas: rounds[0].replicas,
    rounds: rounds.length,
    requestsPerSecond: { median: median(rps), min: Math.min(...rps), max: Math.max(...rps) },
    p50Ms: median(rounds.map((r) => r.latencyMs.p50)),
    p95Ms: median(rounds.map((r) => r.latencyMs.p95)),
    failed: rounds.reduce((n, r) => n + r.failed, 0),
    clientCpuMsPerRequest: median(rounds.map((r) => r.clientCpuMsPerRequest)),
    replicaCpuMsPerRequest: median(rounds.map((r) => r.replicaCpuMsPerRequest.reduce((a, b) => a + b, 0))),
  };
}

/** Rounds of 1 and of 2 replicas (any order): per configuration medians and the throughput ratio. */
export function summarizeCores(rounds: readonly CoresRound[]): CoresSummary {
  const one = rounds.filter((r) => r.replicas === 1).sort((a, b) => a.round - b.round);
  const two = rounds.filter((r) => r.replicas === 2).sort((a, b) => a.round - b.round);
  if (one.length === 0 || two.length === 0) throw new Error('need rounds of 1 and of 2 replicas');
  const configs = [summarizeConfig(one), summarizeConfig(two)];
  return {
    configs,
    throughputRatio: configs[1].requestsPerSecond.median / configs[0].requestsPerSecond.median,
    roundRatios: two.slice(0, one.length).map((r, i) => r.requestsPerSecond / one[i].requestsPerSecond),
  };
}

/**
 * bench/sim's model of the same closed loop: `clients` requests always in flight, spread
 * evenly over `replicas` replicas of `cores` cores each; a replica running n rows serves
 * min(n, cores) / cpuMsPerRequest(n) requests per ms (a mean request, serve.ts). Simulated.
 */
export function simulatedRequestsPerSecond(replicas: number, clients: number, cores: number = DEPLOY.coresPerReplica): number {
  const rows = clients / replicas;
  return (replicas * Math.min(rows, cores) * 1000) / cpuMsPerRequest(rows);
}
