// The benchmark's pure parts on real data: the CPU breakdown arithmetic on issue 12's own
// measurements (fixtures/cpu-levels-2026-12-02.json, the probe's and /proc's figures of
// the run the issue tabulates), the CPU-profile split on a profile node writes here, the
// target evaluation on the baseline, and the onnxruntime bound on a real model.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { breakdown, type LevelCpu } from '../../bench/perf/breakdown.ts';
import { nonOrtShares, profileBuckets, readProfile } from '../../bench/perf/cpu-profile.ts';
import { decodeBound, measureOrtCosts, requestBound } from '../../bench/perf/ort-bound.ts';
import { evaluateTargets, formatTarget, type Figures } from '../../bench/perf/targets.ts';
import { median } from '../../bench/measure.ts';
import { runAlternating, type LoadRequest, type Send } from '../../bench/load-client.ts';
import { ROOT } from '../helpers.ts';

interface FixtureLevel { target: string; round: number; concurrency: number; cpu: LevelCpu }
const fixture = JSON.parse(readFileSync(join(ROOT, 'test/bench/fixtures/cpu-levels-2026-12-02.json'), 'utf8')) as { levels: FixtureLevel[] };
const levelsOf = (target: string, c: number): FixtureLevel[] => fixture.levels.filter((l) => l.target === target && l.concurrency === c);

describe('CPU breakdown', () => {
  it("reproduces issue 12's onnxruntime rows and totals (medians of its rounds)", () => {
    const at = (c: number) => {
      const bds = levelsOf('iris', c).map((l) => breakdown(l.cpu));
      return (k: keyof ReturnType<typeof breakdown>): number => median(bds.map((b) => b[k]));
    };
    const c1 = at(1);
    const c32 = at(32);
    // The table: 1.47 / 1.21 / 2.55 (5.2) at c1 and 1.41 / 0.51 / 0.65 (2.6) at c32; totals 20.1 and 14.2.
    expect([c1('ortEncoder'), c1('ortPrefill'), c1('ortDecode'), c1('total')].map((x) => +x.toFixed(2))).toEqual([1.47, 1.21, 2.55, 20.1]);
    expect([c32('ortEncoder'), c32('ortPrefill'), c32('ortDecode')].map((x) => +x.toFixed(2))).toEqual([1.41, 0.51, 0.65]);
    expect(c32('total')).toBeCloseTo(14.2, 1);
    expect(c32('ort')).toBeCloseTo(2.6, 1);
  });

  it('accounts for every millisecond once, with and without the main thread split', () => {
    for (const level of fixture.levels) {
      const shares = { image: 0.2, engine: 0.1, http: 0.4, gc: 0.25, other: 0.05 };
      for (const b of [breakdown(level.cpu), breakdown(level.cpu, shares)]) {
        const parts = b.ort + b.otherThreads + b.image + b.http + b.gc + b.engine + b.mainJs + b.other;
        expect(parts).toBeCloseTo(b.total, 6);
        expect(b.outsideOrt).toBeCloseTo(b.total - b.ort, 9);
        expect(b.ort).toBeCloseTo(b.ortEncoder + b.ortPrefill + b.ortDecode, 9);
      }
      const mainRest = level.cpu.byGroup.main - Object.values(level.cpu.ortByGroup.main ?? {}).reduce((s, x) => s + x, 0);
      expect(breakdown(level.cpu).mainJs).toBeCloseTo(mainRest, 9); // unsplit: the main thread's JS is one row
      expect(breakdown(level.cpu, shares).http).toBeCloseTo(mainRest * 0.4, 9);
      // sharp's threads are image work however the main thread splits
      expect(breakdown(level.cpu).image).toBeGreaterThanOrEqual((level.cpu.byGroup['libuv-pool'] ?? 0) + (level.cpu.byGroup.libvips ?? 0) - 1e-9);
    }
  });

  it("counts the transformers.js server's unknown threads (its intra-op pools) outside onnxruntime", () => {
    const tjs = levelsOf('tjs', 32)[0];
    const b = breakdown(tjs.cpu);
    expect(b.otherThreads).toBe(tjs.cpu.byGroup.other ?? 0);
    expect(b.engine).toBe(0);
  });
});

describe('CPU profile split', () => {
  it("splits a real node --cpu-prof profile's samples into buckets, and a window cuts them", () => {
    const dir = mkdtempSync(join(tmpdir(), 'iris-prof-'));
    try {
      // Allocation-heavy JS for ~300 ms: JS samples and garbage collection.
      const script = 'let keep = []; const end = Date.now() + 300; while (Date.now() < end) { keep.push({ a: [1, 2, 3] }); if (keep.length > 5e4) keep = []; }';
      const run = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '500', '-e', script]);
      expect(run.status).toBe(0);
      const profile = readProfile(join(dir, readdirSync(dir)[0]));
      const all = profileBuckets(profile);
      const busy = all.image + all.engine + all.http + all.gc + all.other;
      expect(busy / 1000).toBeGreaterThan(150); // ms of the 300 ms loop
      expect(all.gc).toBeGreaterThan(0);
      expect(all.image + all.engine).toBe(0); // no Iris frame in a bare script
      const shares = nonOrtShares(all)!;
      expect(Object.values(shares).reduce((s, x) => s + x, 0)).toBeCloseTo(1, 9);
      const none = profileBuckets(profile, [0, 1]); // a window long before the run
      expect(Object.values(none).every((x) => x === 0)).toBe(true);
      expect(nonOrtShares(none)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('targets', () => {
  // Issue 12's "now" figures: 113 vs 105 req/s at c32 (1.08×), 49 vs 78 at c1, 11.6 ms outside
  // onnxruntime, 3,192 tok/s at c32 (2.2×, 27 % of 11,900), speculation 1.07×.
  const baseline: Figures = {
    captions: { c1: { iris: { requestsPerSecond: 49, p50Ms: 19.6 }, tjs: { requestsPerSecond: 78, p50Ms: 12.4 } }, c32: { iris: { requestsPerSecond: 113, p50Ms: 270 }, tjs: { requestsPerSecond: 104.6, p50Ms: 290 } } },
    captionBoundRequestsPerSecond: 1320,
    outsideOrtMsC32: 11.6,
    generateC32: { iris: 3192, tjs: 1451 },
    decodeBoundTokensPerSecond: 11_900,
    speculativeP50Ms: { plain: 19.6, draft: 18.3, medusa: 18.3 },
  };

  it("fails every target on the issue's baseline, with the issue's ratios", () => {
    const r = evaluateTargets(baseline);
    expect(r.map((t) => t.pass)).toEqual(Array(8).fill(false));
    const byId = Object.fromEntries(r.map((t) => [t.id, t.value]));
    expect(byId.captionsC32VsTjs).toBeCloseTo(1.08, 2);
    expect(byId.captionsC32VsBound).toBeCloseTo(0.086, 3); // "9 %"
    expect(byId.captionsC1Rps).toBeCloseTo(0.63, 2);
    expect(byId.generateC32VsTjs).toBeCloseTo(2.2, 1);
    expect(byId.generateC32VsBound).toBeCloseTo(0.27, 2);
    expect(formatTarget(r[4])).toBe('11.60 ms (≤ 5 ms) FAIL');
  });

  it('passes each target exactly at its bar, and fails what was not measured', () => {
    const atBars: Figures = {
      captions: { c1: { iris: { requestsPerSecond: 80, p50Ms: 12 }, tjs: { requestsPerSecond: 80, p50Ms: 12 } }, c32: { iris: { requestsPerSecond: 200, p50Ms: 100 }, tjs: { requestsPerSecond: 100, p50Ms: 300 } } },
      captionBoundRequestsPerSecond: 200 / 0.15,
      outsideOrtMsC32: 5,
      generateC32: { iris: 3000, tjs: 1000 },
      decodeBoundTokensPerSecond: 3000 / 0.38,
      speculativeP50Ms: { plain: 13, draft: NaN, medusa: 10 },
    };
    expect(evaluateTargets(atBars).filter((t) => !t.pass).map((t) => t.id)).toEqual([]);
    const unmeasured = evaluateTargets({ ...atBars, speculativeP50Ms: { plain: 13, draft: 10, medusa: NaN } });
    expect(unmeasured.find((t) => t.id === 'speculativeP50')).toMatchObject({ pass: false });
    expect(formatTarget(unmeasured.find((t) => t.id === 'speculativeP50')!)).toBe('n/a (≥ 1.3×) FAIL');
  });
});

describe('onnxruntime-only bound', () => {
  it('measures a real folder and turns its costs into the bounds', async () => {
    const costs = await measureOrtCosts(join(ROOT, 'assets/models/tiny-random'), { rounds: 1, calls: 4, encoderBatches: [1, 2], prefillRows: [1, 4], decodeRows: 4, pasts: [2, 6] });
    expect(costs.encoderMsPerImage).toBeGreaterThan(0);
    expect(costs.prefillMsPerRow).toBeGreaterThan(0);
    expect(costs.encoderMsPerImage).toBeLessThanOrEqual(costs.encoderMsByBatch[1]);
    const step = costs.decodeMsByPast[6] / 4;
    const bound = requestBound(costs, 10, 5, 2); // past 5: the nearest measured past is 6
    expect(bound.msPerRequest).toBeCloseTo(costs.encoderMsPerImage + costs.prefillMsPerRow + 10 * step, 9);
    expect(bound.requestsPerSecond).toBeCloseTo(2000 / bound.msPerRequest, 9);
    expect(decodeBound(costs, 6)).toBeCloseTo(1000 / step, 9);
  });
});

describe('targets taking turns', () => {
  it('gives each target its own requests, the first of each turn rotating, and keeps each one\'s latencies apart', async () => {
    const order: string[] = [];
    const send = (name: string, ms: number): Send => async (request) => {
      order.push(`${name}:${request.prompt}`);
      return { ms, firstTokenMs: ms / 2, tokens: 3, ok: true };
    };
    const requests: LoadRequest[] = Array.from({ length: 6 }, (_, i) => ({ task: 'generate', image: new Uint8Array(), prompt: String(i) }));
    const options = { maxNewTokens: 3 };
    const [a, b] = await runAlternating([{ send: send('a', 10), options }, { send: send('b', 4), options }], requests, 3);
    expect(order).toEqual(['a:0', 'b:1', 'b:3', 'a:2', 'a:4', 'b:5']);
    expect([a.requests, b.requests, a.concurrency]).toEqual([3, 3, 1]);
    expect([a.latencyMs.p50, b.latencyMs.p50]).toEqual([10, 4]);
  });
});
