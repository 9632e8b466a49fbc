// npm run bench [-- --quick] [-- --model DIR --rounds N --suffix NAME]
// The benchmark: Iris against the transformers.js server (bench/tjs-server.ts) on the same
// model folder, side by side in one run, over real HTTP (Iris through its SSE
// subscriptions), each server its own process with the probe (bench/perf/probe.mjs)
// preloaded, workloads interleaved level by level and target by target in rounds (the
// machine may be shared; figures are medians over rounds). Iris is measured without a
// profiler (V8's --cpu-prof at 2 ms cost it 1.4 ms of CPU per caption at c32); a second
// Iris with its main thread profiled runs the caption levels after them, and its profile's
// shares split the measured Iris's time outside onnxruntime:
//   captions      c1 and c32: requests/s, p50 latency, server CPU per request broken down
//                 (onnxruntime encoder / prefill / decode, image decode and resize,
//                 GraphQL/yoga/HTTP/SSE, GC, engine JS: bench/perf/breakdown.ts)
//   generations   48 tokens each (min = max), c1 / c8 / c32: tokens/s
//   speculation   one client, captions on the same Iris server, `speculative: draft` and
//                 `medusa` vs `off` taking turns request by request: p50 latency (each
//                 needs the folder's draft/ or medusa/)
//   bounds        onnxruntime alone, in this process, in thread CPU (bench/perf/ort-bound.ts):
//                 captions/s on all cores at the best batch sizes; one decoder thread's
//                 tokens/s at 32 rows
// then issue 12's targets as ratios with pass/fail, a compact table on stdout, and JSON +
// PNG in bench/results/local/ (bench/results/ with IRIS_BENCH_UPDATE=1).
// --quick: one round of small levels, a smoke run (a minute or two); the figures are not
// for quoting.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DEFAULT_MODEL_DIR } from '../src/model/load.ts';
import { ROOT } from '../test/helpers.ts';
import { renderChart, type Panel } from './chart.ts';
import { distinctRequests, irisSender, runLevel, tjsSender, type LoadOptions, type Send } from './load-client.ts';
import { median } from './measure.ts';
import { breakdown, ROWS, type Breakdown } from './perf/breakdown.ts';
import { nonOrtShares, profileBuckets, readProfile, type ProfileBucket } from './perf/cpu-profile.ts';
import { measureAlternating, measureLevel, type MeasuredLevel } from './perf/http-cpu.ts';
import { decodeBound, measureOrtCosts, requestBound } from './perf/ort-bound.ts';
import { peakRssMb, startIris, startTjs, stop, type Server } from './perf/servers.ts';
import { evaluateTargets, formatTarget, type Figures } from './perf/targets.ts';
import { resultsDir, shown } from './results-dir.ts';

const { values } = parseArgs({ options: {
  quick: { type: 'boolean' }, model: { type: 'string' }, rounds: { type: 'string' }, suffix: { type: 'string' },
} });
const quick = values.quick ?? false;
const modelDir = resolve(values.model ?? DEFAULT_MODEL_DIR);
const hasDraft = existsSync(join(modelDir, 'draft/onnx/decoder_model_merged.onnx'));
const hasHeads = existsSync(join(modelDir, 'medusa/onnx/decoder_model_merged.onnx'));
const speculations = [...(hasDraft ? ['draft' as const] : []), ...(hasHeads ? ['medusa' as const] : [])];
const cores = cpus().length;

/** Sizes of the run: the full one takes a few minutes on an idle 2-core machine, about twice that when busy. */
const PLAN = quick
  ? { rounds: 1, captions: { 1: 16, 32: 64 }, generations: { 1: 4, 8: 8, 32: 32 }, speculation: 16, warmup: 8, steady: { captions: 32, generations: 8 }, ort: { rounds: 1, calls: 8 } }
  : { rounds: 5, captions: { 1: 96, 32: 256 }, generations: { 1: 16, 8: 48, 32: 128 }, speculation: 64, warmup: 32, steady: { captions: 1024, generations: 128 }, ort: { rounds: 5, calls: 40 } };
const rounds = Number(values.rounds ?? PLAN.rounds);
const GEN_TOKENS = 48;
const SETTLE_MS = 600;
const PROFILE_INTERVAL_US = 2000;

/** The thread-CPU helper (clock_gettime per thread, ~3 µs a read); without it the probe reads /proc (coarser, slower). */
function ensureThreadCpuHelper(): string {
  const out = join(ROOT, 'bench/perf/threadcpu.node');
  if (existsSync(out)) return 'native';
  try {
    execFileSync('gcc', ['-O2', '-shared', '-fPIC', `-I${join(process.execPath, '../../include/node')}`, '-I/usr/include/node', join(ROOT, 'bench/perf/threadcpu.c'), '-o', out], { stdio: 'ignore' });
    return 'native (built now)';
  } catch {
    console.warn('bench: could not build bench/perf/threadcpu.node (gcc and node headers); the probe falls back to /proc/thread-self/schedstat');
    return '/proc fallback';
  }
}

// Distinct images (load-client.ts): no embedding-cache hits.
const requests = distinctRequests();

interface Target { name: string; server: Server; send: Send; options: LoadOptions }
interface Workload { name: 'captions' | 'generations' | 'speculation' | 'profiled'; task: 'caption' | 'generate'; targets: Target[]; sizes: Record<number, number> }

async function runWorkload(w: Workload, probeDir: string, numRounds = rounds): Promise<MeasuredLevel[]> {
  for (const t of w.targets) await runLevel(t.send, 4, requests(PLAN.warmup, w.task), t.options); // JIT, first allocations
  const out: MeasuredLevel[] = [];
  for (let round = 1; round <= numRounds; round++) {
    for (const [c, n] of Object.entries(w.sizes)) for (const t of w.targets) {
      const level = await measureLevel({ name: t.name, pid: t.server.pid, send: t.send }, probeDir, round, Number(c), requests(n, w.task), t.options, SETTLE_MS);
      out.push(level);
      console.log(`${w.name} round ${round} ${t.name.padEnd(6)} c=${String(c).padStart(2)}: ${level.requestsPerSecond.toFixed(1)} req/s, ${level.tokensPerSecond.toFixed(0)} tok/s, p50 ${level.latencyMs.p50.toFixed(1)} ms, ` +
        `server CPU ${level.cpu.threadsTotal.toFixed(2)} ms/req${level.failed ? `, FAILED ${level.failed} (${level.firstError})` : ''}, load ${level.loadAvg.after}`);
    }
  }
  return out;
}

/**
 * Targets on one server, one client, taking turns request by request (http-cpu.ts
 * measureAlternating): the speculation modes' p50s compare side by side. Run as levels of
 * 64 one after another, plain decoding's p50 ranged 12.9-17.4 ms over the five rounds of
 * one run (2026-12-02): the machine's drift was larger than the gap being measured.
 */
async function runAlternatingWorkload(name: Workload['name'], targets: Target[], perTarget: number, probeDir: string): Promise<MeasuredLevel[]> {
  for (const t of targets) await runLevel(t.send, 1, requests(PLAN.warmup / 2, 'caption'), t.options);
  const out: MeasuredLevel[] = [];
  for (let round = 1; round <= rounds; round++) {
    const measured = await measureAlternating(targets, targets[0].server.pid, probeDir, round, requests(perTarget * targets.length, 'caption'), SETTLE_MS);
    out.push(...measured);
    console.log(`${name} round ${round} c= 1, taking turns: ${measured.map((l) => `${l.target} p50 ${l.latencyMs.p50.toFixed(1)} ms`).join(', ')}; server CPU ${measured[0].cpu.threadsTotal.toFixed(2)} ms/req (all of them), load ${measured[0].loadAvg.after}`);
  }
  return out;
}

/**
 * Brings a server to its steady state before anything is measured: V8 keeps compiling a
 * server's per-request functions for its first thousand or so requests (158 TurboFan
 * compilations in the second round of 256 captions at c32), and with only the levels'
 * small warm-ups Iris's CPU per caption at c32 fell round after round (9.05, 8.59, 7.86,
 * 6.70, 7.51 ms in one run; transformers.js's 19.3 to 15.5), so the median measured
 * warm-up. Every server gets the same: captions and generations at c32, captions at c1
 * (Iris's in-thread image path), and on Iris each speculative mode.
 */
async function reachSteadyState(send: Send, isIris: boolean): Promise<void> {
  await runLevel(send, 32, requests(PLAN.steady.captions, 'caption'), { maxNewTokens: 24 });
  await runLevel(send, 32, requests(PLAN.steady.generations, 'generate'), { maxNewTokens: GEN_TOKENS, minNewTokens: GEN_TOKENS });
  await runLevel(send, 1, requests(PLAN.steady.generations, 'caption'), { maxNewTokens: 24 });
  if (isIris) for (const mode of speculations) await runLevel(send, 1, requests(PLAN.steady.generations / 2, 'caption'), { maxNewTokens: 24, speculative: mode });
}

const loadBefore = loadavg();
const startedAt = performance.now();
const threadCpu = ensureThreadCpuHelper();
const work = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'iris-bench-'));
const profileDir = join(work, 'profiles');

console.log(`bench: ${basename(modelDir)}, ${cores} cores, ${rounds} round(s)${quick ? ' (quick)' : ''}, thread CPU ${threadCpu}, load ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
// onnxruntime alone first, while no server runs.
const ortCosts = await measureOrtCosts(modelDir, { ...PLAN.ort, encoderBatches: [1, 4, 16], prefillRows: [1, 8, 32], decodeRows: 32, pasts: [8, 1 + GEN_TOKENS / 2] });
console.log(`onnxruntime alone: encoder ${ortCosts.encoderMsPerImage.toFixed(3)} ms/image, prefill ${ortCosts.prefillMsPerRow.toFixed(3)} ms/row, 32-row decode step ${Object.entries(ortCosts.decodeMsByPast).map(([p, ms]) => `${ms.toFixed(3)} ms at past ${p}`).join(', ')}`);

const iris = await startIris('iris', modelDir, { probeDir: work });
const tjs = await startTjs('tjs', modelDir, { probeDir: work });
// Started now so that both Irises load while nothing is measured; it serves only the profiled caption levels.
const profiled = await startIris('iris-profiled', modelDir, { probeDir: work, cpuProfileDir: profileDir, cpuProfileIntervalUs: PROFILE_INTERVAL_US });
const levels: Record<string, MeasuredLevel[]> = {};
const peakRss: Record<string, number> = {};
try {
  const sendIris = irisSender(iris.url);
  const sendTjs = tjsSender(tjs.url);
  const pair = (options: LoadOptions): Target[] => [{ name: 'iris', server: iris, send: sendIris, options }, { name: 'tjs', server: tjs, send: sendTjs, options }];
  const warming = performance.now();
  for (const [server, send] of [[iris, sendIris], [tjs, sendTjs], [profiled, irisSender(profiled.url)]] as const) await reachSteadyState(send, server.kind === 'iris');
  console.log(`steady state: ${PLAN.steady.captions} captions and ${PLAN.steady.generations} generations at c32, ${PLAN.steady.generations} captions at c1 on each server (${((performance.now() - warming) / 1000).toFixed(0)} s)`);
  levels.captions = await runWorkload({ name: 'captions', task: 'caption', targets: pair({ maxNewTokens: 24 }), sizes: PLAN.captions }, work);
  levels.generations = await runWorkload({ name: 'generations', task: 'generate', targets: pair({ maxNewTokens: GEN_TOKENS, minNewTokens: GEN_TOKENS }), sizes: PLAN.generations }, work);
  if (speculations.length > 0) {
    levels.speculation = await runAlternatingWorkload('speculation', [
      { name: 'plain', server: iris, send: sendIris, options: { maxNewTokens: 24, speculative: 'off' } },
      ...speculations.map((mode) => ({ name: mode, server: iris, send: sendIris, options: { maxNewTokens: 24, speculative: mode } })),
    ], PLAN.speculation, work);
  } else console.log(`no ${join(modelDir, 'draft')} or ${join(modelDir, 'medusa')}: speculation not measured`);
  for (const s of [iris, tjs]) peakRss[s.name] = peakRssMb(s.pid);
  levels.profiled = await runWorkload({ name: 'profiled', task: 'caption', targets: [{ name: 'iris-profiled', server: profiled, send: irisSender(profiled.url), options: { maxNewTokens: 24 } }], sizes: PLAN.captions }, work, Math.min(rounds, 2));
} finally {
  await Promise.all([stop(iris), stop(tjs), stop(profiled)]);
}

// The profiled Iris's main-thread profile, cut to each of its levels' windows and averaged
// per client count: the shares that split the measured Iris's non-onnxruntime time at the
// same load (bench/perf/breakdown.ts). Generations and speculation stay unsplit.
const mainProfile = readdirSync(existsSync(profileDir) ? profileDir : work).find((f) => f.includes(`.${profiled.pid}.0.`) && f.endsWith('.cpuprofile'));
const profile = mainProfile ? readProfile(join(profileDir, mainProfile)) : undefined;
if (!profile) console.warn('bench: no CPU profile of the profiled Iris server: Iris\'s main-thread time stays unsplit');
const sharesAt = new Map<number, ReturnType<typeof nonOrtShares>>();
for (const c of new Set((levels.profiled ?? []).map((l) => l.concurrency))) {
  const each = (levels.profiled ?? []).filter((l) => l.concurrency === c).map((l) => (profile ? nonOrtShares(profileBuckets(profile, l.windowUs)) : undefined)).filter((x) => x !== undefined);
  if (each.length > 0) sharesAt.set(c, Object.fromEntries(Object.keys(each[0]).map((k) => [k, each.reduce((t, x) => t + x[k as keyof typeof x], 0) / each.length])) as ReturnType<typeof nonOrtShares>);
}
const breakdownOf = (l: MeasuredLevel, workload: string): Breakdown => {
  const isIrisCaption = l.target === 'iris' && workload === 'captions';
  return breakdown(l.cpu, isIrisCaption ? sharesAt.get(l.concurrency) : undefined);
};

interface Summary {
  requestsPerSecond: number; tokensPerSecond: number; tokensPerRequest: number; p50Ms: number; p95Ms: number;
  failed: number; rounds: number; clientCpuMsPerRequest: number; decodeRowStepsPerRequest: number; cpu: Breakdown;
}
function summarize(ls: MeasuredLevel[], workload: string): Summary {
  const m = (pick: (l: MeasuredLevel) => number): number => median(ls.map(pick));
  const bds = ls.map((l) => breakdownOf(l, workload));
  return {
    requestsPerSecond: m((l) => l.requestsPerSecond), tokensPerSecond: m((l) => l.tokensPerSecond), tokensPerRequest: m((l) => l.tokensPerRequest),
    p50Ms: m((l) => l.latencyMs.p50), p95Ms: m((l) => l.latencyMs.p95), failed: ls.reduce((n, l) => n + l.failed, 0), rounds: ls.length,
    clientCpuMsPerRequest: m((l) => l.clientCpuMsPerRequest),
    decodeRowStepsPerRequest: m((l) => (l.ortCalls.decode?.rows ?? 0) / l.requests),
    cpu: Object.fromEntries(ROWS.map(([k]) => [k, median(bds.map((b) => b[k]))])) as Breakdown,
  };
}
const summary: Record<string, Record<string, Record<number, Summary>>> = {};
for (const [w, ls] of Object.entries(levels)) {
  for (const l of ls) ((summary[w] ??= {})[l.target] ??= {});
  for (const t of Object.keys(summary[w])) for (const c of new Set(ls.map((l) => l.concurrency))) summary[w][t][c] = summarize(ls.filter((l) => l.target === t && l.concurrency === c), w);
}
const cap = summary.captions;
const gen = summary.generations;
const spec = summary.speculation;
// Plain decoding's row-steps (one per generated token): the bound is the model's unavoidable work, whatever
// speculation saves (Iris's own steps are verify calls with Medusa, which the probe counts apart).
const captionBound = requestBound(ortCosts, cap.iris[32].tokensPerRequest, 1 + cap.iris[32].tokensPerRequest / 2, cores);
const genBound = decodeBound(ortCosts, 1 + GEN_TOKENS / 2);
const figures: Figures = {
  captions: Object.fromEntries(([1, 32] as const).map((c) => [`c${c}`, Object.fromEntries((['iris', 'tjs'] as const).map((t) => [t, { requestsPerSecond: cap[t][c].requestsPerSecond, p50Ms: cap[t][c].p50Ms }]))])) as Figures['captions'],
  captionBoundRequestsPerSecond: captionBound.requestsPerSecond,
  outsideOrtMsC32: cap.iris[32].cpu.outsideOrt,
  generateC32: { iris: gen.iris[32].tokensPerSecond, tjs: gen.tjs[32].tokensPerSecond },
  decodeBoundTokensPerSecond: genBound,
  speculativeP50Ms: { plain: spec?.plain[1].p50Ms ?? NaN, draft: spec?.draft?.[1].p50Ms ?? NaN, medusa: spec?.medusa?.[1].p50Ms ?? NaN },
};
const targets = evaluateTargets(figures);
const loadAfter = loadavg();
// Busy: other work was running when the run started (the load average after it is mostly the run's own servers and client).
const busy = loadBefore[0] > cores * 0.5;
const date = new Date().toISOString();
const result = {
  model: basename(modelDir), date, quick, rounds,
  machine: { cpus: cores, cpu: cpus()[0]?.model, node: process.version, loadAverage: { before: loadBefore, after: loadAfter }, busy, threadCpu },
  settings: { plan: PLAN, generationTokens: GEN_TOKENS, captionMaxNewTokens: 24, profileIntervalUs: PROFILE_INTERVAL_US, settleMs: SETTLE_MS },
  seconds: (performance.now() - startedAt) / 1000,
  onnxruntime: { costs: ortCosts, captionBound, decodeBoundTokensPerSecond: genBound },
  figures, targets, summary, peakRssMb: peakRss,
  levels: Object.fromEntries(Object.entries(levels).map(([w, ls]) => [w, ls.map((l) => ({ ...l, breakdown: breakdownOf(l, w) }))])),
};
const dir = resultsDir();
const stem = `bench-${result.model}-${date.slice(0, 10)}${values.suffix ? `-${values.suffix}` : quick ? '-quick' : ''}`;
await writeFile(join(dir, `${stem}.json`), JSON.stringify(result, null, 2) + '\n');

// The plot: two rows of bar panels.
const IRIS = '#3b6fd8';
const TJS = '#e08a1e';
const bar = (label: string, value: number, color: string) => ({ label, value: Number.isFinite(value) ? value : 0, color });
const vs = (pick: (s: Summary) => number, w: Record<string, Record<number, Summary>>, c: number) => [bar('Iris', pick(w.iris[c]), IRIS), bar('transformers.js', pick(w.tjs[c]), TJS)];
const CPU_BARS: [string, string, (b: Breakdown) => number][] = [
  ['ORT', '#2e5aa8', (b) => b.ort], ['image', '#7fa3e6', (b) => b.image], ['HTTP', '#9e5bd1', (b) => b.http], ['GC', '#c94c4c', (b) => b.gc],
  ['engine', '#2e9e5b', (b) => b.engine], ['other', '#bbb', (b) => b.otherThreads + b.mainJs + b.other], ['Iris', IRIS, (b) => b.total],
];
const cpuBars = (c: number) => [...CPU_BARS.map(([label, color, pick]) => bar(label, pick(cap.iris[c].cpu), color)), bar('tjs', cap.tjs[c].cpu.total, TJS)];
const rowsPanels: Panel[][] = [[
  { title: 'captions, 1 client', unit: 'requests/s (higher is better)', bars: vs((s) => s.requestsPerSecond, cap, 1) },
  { title: 'captions, 32 clients', unit: `requests/s; onnxruntime-only bound ${captionBound.requestsPerSecond.toFixed(0)}`, bars: vs((s) => s.requestsPerSecond, cap, 32) },
  { title: 'captions, p50 latency', unit: 'ms, 1 client | 32 clients (lower is better)', bars: [...vs((s) => s.p50Ms, cap, 1), ...vs((s) => s.p50Ms, cap, 32)].map((b, i) => ({ ...b, label: `${i % 2 ? 'tjs' : 'Iris'} c${i < 2 ? 1 : 32}` })) },
  { title: `${GEN_TOKENS}-token generations`, unit: `tokens/s at c1 | c8 | c32; one-thread bound ${genBound.toFixed(0)}`, bars: [1, 8, 32].flatMap((c) => vs((s) => s.tokensPerSecond, gen, c).map((b) => ({ ...b, label: `${b.label === 'Iris' ? 'Iris' : 'tjs'} c${c}` }))) },
], [
  { title: 'server CPU per caption, 1 client', unit: 'ms per request: Iris by part, Iris and tjs totals', bars: cpuBars(1) },
  { title: 'server CPU per caption, 32 clients', unit: 'ms per request: Iris by part, Iris and tjs totals', bars: cpuBars(32) },
  { title: 'speculation, 1 client, captions', unit: 'p50 latency, ms (lower is better)', bars: [bar('plain', figures.speculativeP50Ms.plain, IRIS), bar('draft', figures.speculativeP50Ms.draft, '#2e9e5b'), bar('medusa', figures.speculativeP50Ms.medusa, '#9b3fd1')] },
  { title: 'targets (issue 12)', unit: 'measured / bar, numbered as printed (≥ 1 passes)', bars: targets.map((t, i) => bar(`T${i + 1}`, t.atMost ? t.bar / t.value : t.value / t.bar, t.pass ? '#2e9e5b' : '#c94c4c')) },
]];
const title = `${result.model}: Iris vs transformers.js over HTTP, ${cores} cores, ${date.slice(0, 10)}${busy ? `, machine busy (load ${loadBefore[0].toFixed(1)} at the start)` : ''}${quick ? ', quick' : ''}`;
const pngs = await Promise.all(rowsPanels.map((p, i) => renderChart(i === 0 ? title : 'CPU, speculation and targets', p)));
const metas = await Promise.all(pngs.map((p) => sharp(p).metadata()));
const width = Math.max(...metas.map((m) => m.width!));
const page = await sharp({ create: { width, height: metas.reduce((h, m) => h + m.height!, 0), channels: 3, background: 'white' } })
  .composite(pngs.map((input, i) => ({ input, left: 0, top: metas.slice(0, i).reduce((h, m) => h + m.height!, 0) })))
  .png().toBuffer();
await writeFile(join(dir, `${stem}.png`), page);
rmSync(work, { recursive: true, force: true });

// The compact table.
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : x < 100 ? 1 : 0) : 'n/a');
const row = (cells: string[], widths: number[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' ');
const W = [34, 10, 10, 8];
console.log(`\n${title}; ${rounds} round(s), medians; ${result.seconds.toFixed(0)} s`);
console.log(row(['', 'Iris', 'tjs', 'ratio'], W));
for (const c of [1, 32]) {
  console.log(row([`captions c${c} req/s`, f1(cap.iris[c].requestsPerSecond), f1(cap.tjs[c].requestsPerSecond), `${f1(cap.iris[c].requestsPerSecond / cap.tjs[c].requestsPerSecond)}×`], W));
  console.log(row([`captions c${c} p50 ms`, f1(cap.iris[c].p50Ms), f1(cap.tjs[c].p50Ms), `${f1(cap.tjs[c].p50Ms / cap.iris[c].p50Ms)}×`], W));
}
for (const c of [1, 8, 32]) console.log(row([`${GEN_TOKENS}-token generations c${c} tok/s`, f1(gen.iris[c].tokensPerSecond), f1(gen.tjs[c].tokensPerSecond), `${f1(gen.iris[c].tokensPerSecond / gen.tjs[c].tokensPerSecond)}×`], W));
console.log(row(['peak RSS MB', f1(peakRss.iris), f1(peakRss.tjs), ''], W));
console.log(`onnxruntime-only bound: captions ${f1(captionBound.requestsPerSecond)} req/s (${captionBound.msPerRequest.toFixed(2)} ms/request on ${cores} cores), Iris c32 at ${(100 * cap.iris[32].requestsPerSecond / captionBound.requestsPerSecond).toFixed(1)} %; ` +
  `one-thread decode at 32 rows ${f1(genBound)} tok/s, Iris c32 at ${(100 * gen.iris[32].tokensPerSecond / genBound).toFixed(1)} %`);
if (spec) console.log(`speculation, 1 client, captions: p50 plain ${f1(spec.plain[1].p50Ms)} ms; ${speculations.map((m) => `${m} ${f1(spec[m][1].p50Ms)} ms (${f1(spec.plain[1].p50Ms / spec[m][1].p50Ms)}× lower)`).join(', ')}`);
const CW = [44, 9, 9, 9, 9];
console.log(`\n${row(['server CPU ms per caption', 'Iris c1', 'Iris c32', 'tjs c1', 'tjs c32'], CW)}`);
for (const [k, label] of ROWS) {
  const cells = [cap.iris[1], cap.iris[32], cap.tjs[1], cap.tjs[32]].map((s) => s.cpu[k]);
  if (cells.every((x) => x === 0)) continue;
  console.log(row([label, ...cells.map(f1)], CW));
}
console.log('\ntargets:');
targets.forEach((t, i) => console.log(`  T${i + 1} ${t.target.padEnd(72)} ${formatTarget(t)}`));
console.log(`\nwrote ${shown(join(dir, stem))}.json and .png`);
