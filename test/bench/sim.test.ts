// The scale-out simulator's invariants, on tiny seeded runs.
import { describe, expect, it } from 'vitest';
import { idealPoolHitShare, Lru, simulateCache, type CacheSimOptions } from '../../bench/sim/cache.ts';
import { simulateRollout, type RolloutOptions } from '../../bench/sim/rollout.ts';
import { createRng, createZipf, EventQueue } from '../../bench/sim/rng.ts';
import { simulateServe } from '../../bench/sim/serve.ts';

const cache = (o: Partial<CacheSimOptions> = {}) =>
  simulateCache({ seed: 7, replicas: 3, requests: 5_000, workload: { kind: 'zipf', catalog: 2_000, s: 0.9 }, routing: 'rr-local', localEntries: 100, sharedEntries: 400, ...o });

const rollout = (o: Partial<RolloutOptions> = {}) =>
  simulateRollout({ seed: 3, replicas: 4, rateRps: 100, meanDurationS: 0.3, longestS: 8, longShare: 0.05, detectS: 1, stop: 'drain', drainDelayS: 1.5, drainTimeoutS: 8, graceS: 15, retries: false, event: 'rolling', readyS: 3, ...o });

describe('scale-out simulator', () => {
  it('is deterministic per seed, and the seed matters', () => {
    expect(cache()).toEqual(cache());
    expect(cache({ seed: 8 })).not.toEqual(cache());
    expect(rollout({ stop: 'kill' })).toEqual(rollout({ stop: 'kill' }));
    const serve = (seed: number) => simulateServe({ seed, replicas: 2, durationS: 5, rate: () => 150 });
    expect(serve(1)).toEqual(serve(1));
    expect(serve(2).arrived).not.toBe(serve(1).arrived);
  });

  it('hit share never falls as a cache grows (LRU is a stack algorithm on a fixed request sequence)', () => {
    for (const routing of ['rr-local', 'hash-local'] as const) {
      let last = -1;
      for (const localEntries of [0, 10, 50, 200, 1000, 5000]) {
        const share = cache({ routing, localEntries }).hitShare;
        expect(share, `${routing} at ${localEntries}`).toBeGreaterThanOrEqual(last);
        last = share;
      }
      expect(last).toBeGreaterThan(0);
    }
    // The shared tier sees the local misses, fixed for a fixed local size.
    let last = -1;
    for (const sharedEntries of [0, 50, 200, 1000, 5000]) {
      const share = cache({ routing: 'rr-redis', sharedEntries, sharedTimeoutShare: 0.1 }).hitShare;
      expect(share, `rr-redis at ${sharedEntries}`).toBeGreaterThanOrEqual(last);
      last = share;
    }
    expect(last).toBeGreaterThan(cache({ routing: 'rr-local' }).hitShare);
    expect(cache({ localEntries: 0 }).hitShare).toBe(0);
  });

  it('orders routings as the trials did: local round robin < shared cache, and hashing beats round robin', () => {
    const workload = { kind: 'pool', pool: 200, popularShare: 0.8 } as const;
    const o = { requests: 900, workload, localEntries: 2048, sharedEntries: 8192 };
    const rr = cache({ ...o, routing: 'rr-local' }).hitShare;
    const redis = cache({ ...o, routing: 'rr-redis' }).hitShare;
    const hash = cache({ ...o, routing: 'hash-local' }).hitShare;
    expect(redis).toBeGreaterThan(rr + 0.15);
    expect(hash).toBeGreaterThan(rr + 0.15);
    // A shared cache without timeouts is one global cache: within noise of the expected ideal.
    expect(Math.abs(redis - idealPoolHitShare(900, 200, 0.8))).toBeLessThan(0.04);
  });

  it('loses nothing when the drain outlasts the longest request, and loses some when it does not', () => {
    expect(rollout().lost).toBe(0);
    expect(rollout({ replicas: 10, rateRps: 300, seed: 11 }).lost).toBe(0);
    expect(rollout({ drainTimeoutS: 1 }).lost).toBeGreaterThan(0);
    expect(rollout({ graceS: 3 }).lost).toBeGreaterThan(0);
    expect(rollout({ drainDelayS: 0.2 }).lost).toBeGreaterThan(0); // closes before the balancer notices
    expect(rollout({ stop: 'shipped' }).lost).toBeGreaterThan(0);
    expect(rollout({ stop: 'kill', retries: true }).lost).toBe(0);
    expect(rollout({ stop: 'kill', retries: true, unretriableShare: 0.5 }).lost).toBeGreaterThan(0);
  });

  it('serves every request when capacity suffices, refuses some when it does not, and scaling up helps', () => {
    const ok = simulateServe({ seed: 1, replicas: 3, durationS: 10, rate: () => 100 });
    expect(ok.rejected).toBe(0);
    expect(ok.arrived - ok.completed).toBeLessThan(40);
    const over = simulateServe({ seed: 1, replicas: 1, durationS: 10, rate: () => 400 });
    expect(over.rejected).toBeGreaterThan(0);
    const scaled = simulateServe({ seed: 1, replicas: 1, durationS: 10, rate: () => 400, autoscale: { pollS: 1, threshold: 8, startS: 1, max: 20 } });
    expect(scaled.rejected).toBeLessThan(over.rejected);
    expect(scaled.replicasAtEnd).toBeGreaterThan(1);
  });

  it('building blocks: LRU evicts the least recent, Zipf favours low ranks, events come out in time order', () => {
    const lru = new Lru(2);
    lru.set(1);
    lru.set(2);
    lru.get(1);
    lru.set(3);
    expect([lru.get(1), lru.get(2), lru.get(3)]).toEqual([true, false, true]);
    const zipf = createZipf(100, 1.2, createRng(5));
    const draws = Array.from({ length: 2000 }, zipf);
    expect(draws.filter((k) => k === 0).length).toBeGreaterThan(draws.filter((k) => k === 50).length * 10);
    const q = new EventQueue<number>();
    for (const t of [5, 1, 4, 2, 3]) q.push(t, t);
    expect(Array.from({ length: 5 }, () => q.pop()!.v)).toEqual([1, 2, 3, 4, 5]);
  });
});
