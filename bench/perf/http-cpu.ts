// One load level against one server over HTTP (bench/load-client.ts), with the server's CPU
// over the level: all its threads from /proc, onnxruntime's calls from the probe, and the
// level's CLOCK_MONOTONIC window (to cut the server's CPU profile to it). Adopted from
// ../shared/perf/http-cpu.ts.
import { loadAverage, diff, snapshot } from './proc-cpu.ts';
import type { LevelCpu } from './breakdown.ts';
import { runLevel, type LevelResult, type LoadOptions, type LoadRequest, type Send } from '../load-client.ts';

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
  const loadBefore = loadAverage();
  const windowStart = Number(process.hrtime.bigint() / 1000n);
  const before = snapshot(target.pid, probeDir);
  const clientBefore = process.cpuUsage();
  const result = await runLevel(target.send, concurrency, requests, options);
  const client = process.cpuUsage(clientBefore);
  const windowUs: [number, number] = [windowStart, Number(process.hrtime.bigint() / 1000n)];
  await sleep(settleMs); // the probe writes its totals every 250 ms
  const d = diff(target.pid, before, snapshot(target.pid, probeDir));
  const n = requests.length;
  const per = (ms: number): number => ms / n;
  const threadsTotal = Object.values(d.groups).reduce((s, x) => s + x, 0);
  const perRecord = (r: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(r).map(([k, ms]) => [k, per(ms)]));
  return {
    ...result,
    target: target.name,
    round,
    cpu: {
      threadsTotal: per(threadsTotal),
      byGroup: perRecord(d.groups),
      ort: perRecord(Object.fromEntries(Object.entries(d.ort).map(([k, o]) => [k, o.cpuMs]))),
      ortByGroup: Object.fromEntries(Object.entries(d.ortByGroup).map(([g, ks]) => [g, perRecord(ks)])),
    },
    serverCores: threadsTotal / (result.seconds * 1000 + settleMs),
    clientCpuMsPerRequest: per((client.user + client.system) / 1000),
    ortCalls: Object.fromEntries(Object.entries(d.ort).map(([k, o]) => [k, { calls: o.calls, rows: o.rows, meanRows: o.rows / o.calls, cpuMsPerCall: o.cpuMs / o.calls }])),
    windowUs,
    loadAvg: { before: loadBefore, after: loadAverage() },
  };
}
