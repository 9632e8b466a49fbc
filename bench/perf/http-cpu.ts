// One load level against one server over HTTP (bench/load-client.ts), with the server's CPU
// over the level: all its threads from /proc, onnxruntime's calls from the probe, and the
// level's CLOCK_MONOTONIC window (to cut the server's CPU profile to it). Adopted from
// ../shared/perf/http-cpu.ts.
import { loadAverage, diff, snapshot } from './proc-cpu.ts';
import type { LevelCpu } from './breakdown.ts';
import { runAlternating, runLevel, type LevelResult, type LoadOptions, type LoadRequest, type Send } from '../load-client.ts';

export interface MeasuredLevel extends LevelResult {
  target: string;
  round: number;
  /** Server CPU ms per request (all requests of the level, failed ones too). */
  cpu: LevelCpu;
  /** Server CPU cores busy on average over the level. */
  serverCores: number;
  /** This process's CPU ms per request (the client shares the machine). */
  clientCpuMsPerRequest: number;
  /** onnxruntime calls by kind: count, mean rows, CPU ms per call. */
  ortCalls: Record<string, { calls: number; rows: number; meanRows: number; cpuMsPerCall: number }>;
  /** The level's interval, µs of CLOCK_MONOTONIC. */
  windowUs: [number, number];
  loadAvg: { before: string; after: string };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function measureLevel(
  target: { name: string; pid: number; send: Send },
  probeDir: string,
  round: number,
  concurrency: number,
  requests: readonly LoadRequest[],
  options: LoadOptions,
  settleMs: number,
): Promise<MeasuredLevel> {
  const run = await measureRun(target.pid, probeDir, settleMs, () => runLevel(target.send, concurrency, requests, options));
  return measuredLevel(target.name, round, run.value, run, requests.length, run.value.seconds * 1000 + settleMs);
}

/**
 * Targets on one server (say speculation modes) taking turns request by request, one client
 * (load-client.ts runAlternating): a level per target whose latencies compare side by
 * side. The server's CPU cannot be told apart per target: each level reports the whole
 * run's CPU per request, and `sharedWith` names the targets it was shared with.
 */
export async function measureAlternating(
  targets: readonly { name: string; send: Send; options: LoadOptions }[],
  pid: number,
  probeDir: string,
  round: number,
  requests: readonly LoadRequest[],
  settleMs: number,
): Promise<(MeasuredLevel & { sharedWith: string[] })[]> {
  const perTarget = Math.floor(requests.length / targets.length);
  const run = await measureRun(pid, probeDir, settleMs, () => runAlternating(targets, requests, perTarget));
  const wallMs = run.value.reduce((ms, l) => ms + l.seconds * 1000, 0) + settleMs;
  return run.value.map((level, j) => ({ ...measuredLevel(targets[j].name, round, level, run, perTarget * targets.length, wallMs), sharedWith: targets.map((t) => t.name) }));
}

interface Run<T> {
  value: T;
  d: ReturnType<typeof diff>;
  client: NodeJS.CpuUsage;
  windowUs: [number, number];
  loadAvg: { before: string; after: string };
}

async function measureRun<T>(pid: number, probeDir: string, settleMs: number, run: () => Promise<T>): Promise<Run<T>> {
  const loadBefore = loadAverage();
  const windowStart = Number(process.hrtime.bigint() / 1000n);
  const before = snapshot(pid, probeDir);
  const clientBefore = process.cpuUsage();
  const value = await run();
  const client = process.cpuUsage(clientBefore);
  const windowUs: [number, number] = [windowStart, Number(process.hrtime.bigint() / 1000n)];
  await sleep(settleMs); // the probe writes its totals every 250 ms
  const d = diff(pid, before, snapshot(pid, probeDir));
  return { value, d, client, windowUs, loadAvg: { before: loadBefore, after: loadAverage() } };
}

/** A level's figures with the server CPU of `run` spread over its `n` requests. */
function measuredLevel(target: string, round: number, result: LevelResult, run: Run<unknown>, n: number, wallMs: number): MeasuredLevel {
  const { d, client } = run;
  const per = (ms: number): number => ms / n;
  const threadsTotal = Object.values(d.groups).reduce((s, x) => s + x, 0);
  const perRecord = (r: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(r).map(([k, ms]) => [k, per(ms)]));
  return {
    ...result,
    target,
    round,
    cpu: {
      threadsTotal: per(threadsTotal),
      byGroup: perRecord(d.groups),
      ort: perRecord(Object.fromEntries(Object.entries(d.ort).map(([k, o]) => [k, o.cpuMs]))),
      ortByGroup: Object.fromEntries(Object.entries(d.ortByGroup).map(([g, ks]) => [g, perRecord(ks)])),
    },
    serverCores: threadsTotal / wallMs,
    clientCpuMsPerRequest: per((client.user + client.system) / 1000),
    ortCalls: Object.fromEntries(Object.entries(d.ort).map(([k, o]) => [k, { calls: o.calls, rows: o.rows, meanRows: o.rows / o.calls, cpuMsPerCall: o.cpuMs / o.calls }])),
    windowUs: run.windowUs,
    loadAvg: run.loadAvg,
  };
}
