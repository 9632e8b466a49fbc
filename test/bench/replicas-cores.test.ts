// bench:cores's pure part: medians over rounds, the 2/1 throughput ratio, and bench/sim's
// model of the same closed loop (which assumes a replica per core adds a core's throughput).
import { describe, expect, it } from 'vitest';
import { simulatedRequestsPerSecond, summarizeCores, type CoresRound } from '../../bench/replicas-cores-summary.ts';
import { cpuMsPerRequest } from '../../bench/sim/costs.ts';

const round = (replicas: number, n: number, rps: number, p50: number, p95: number): CoresRound => ({
  replicas, round: n, requests: 100, failed: 0, seconds: 100 / rps, requestsPerSecond: rps,
  latencyMs: { p50, p95 }, clientCpuMsPerRequest: 2, replicaCpuMsPerRequest: replicas === 1 ? [10, 0] : [5, 6],
});

describe('bench:cores summary', () => {
  it('takes medians over rounds per configuration and the ratio of the median throughputs', () => {
    const s = summarizeCores([
      round(1, 1, 50, 300, 400), round(2, 1, 90, 170, 260),
      round(2, 2, 80, 190, 280), round(1, 2, 40, 380, 500),
      round(1, 3, 60, 260, 350), round(2, 3, 100, 150, 230),
    ]);
    expect(s.configs.map((c) => [c.replicas, c.rounds, c.requestsPerSecond, c.p50Ms, c.p95Ms, c.replicaCpuMsPerRequest]))
      .toEqual([[1, 3, { median: 50, min: 40, max: 60 }, 300, 400, 10], [2, 3, { median: 90, min: 80, max: 100 }, 170, 260, 11]]);
    expect(s.throughputRatio).toBeCloseTo(1.8);
    expect(s.roundRatios).toEqual([90 / 50, 80 / 40, 100 / 60]);
  });

  it('refuses rounds of only one configuration', () => {
    expect(() => summarizeCores([round(1, 1, 50, 1, 2)])).toThrow();
  });

  it("gives the sim's model: one core per replica, smaller batches per replica as replicas grow", () => {
    expect(simulatedRequestsPerSecond(1, 16)).toBeCloseTo(1000 / cpuMsPerRequest(16));
    expect(simulatedRequestsPerSecond(2, 16)).toBeCloseTo(2000 / cpuMsPerRequest(8));
    expect(simulatedRequestsPerSecond(2, 16) / simulatedRequestsPerSecond(1, 16)).toBeGreaterThan(1.8);
    expect(simulatedRequestsPerSecond(2, 16) / simulatedRequestsPerSecond(1, 16)).toBeLessThan(2);
  });
});
