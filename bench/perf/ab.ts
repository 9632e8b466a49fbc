// npx tsx bench/perf/ab.ts --a /work/main --b . [--rounds 6 --n 256 --c 32 --profile] [--generate 48]
// Interleaved A/B of two checkouts' servers on captions (or, with --generate N, N-token
// generations, min = max) over HTTP/SSE: each round runs one
// level on A then on B (order alternating by round), server CPU per request across all its
// threads (/proc schedstat) and onnxruntime's share (the probe). Prints per-round figures and
// medians with min–max spread of CPU outside onnxruntime. The machine may be shared: CPU
// per request, not wall time, is the comparison. --flagsA/--flagsB: extra server flags;
// --nodeA/--nodeB: extra node flags (e.g. V8's); --envA/--envB: extra environment
// variables, 'KEY=VALUE KEY2=VALUE' (e.g. glibc's MALLOC_* tunables, read at process start).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, createWriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_DIR } from '../../src/model/load.ts';
import { ROOT } from '../../test/helpers.ts';
import { distinctRequests, irisSender, runLevel } from '../load-client.ts';
import { diff, snapshot } from './proc-cpu.ts';

const { values } = parseArgs({ options: {
  a: { type: 'string' }, b: { type: 'string' }, generate: { type: 'string' }, rounds: { type: 'string' }, n: { type: 'string' }, c: { type: 'string' },
  profile: { type: 'boolean' }, flagsA: { type: 'string' }, flagsB: { type: 'string' }, nodeA: { type: 'string' }, nodeB: { type: 'string' }, envA: { type: 'string' }, envB: { type: 'string' },
} });
const roots = { A: resolve(values.a ?? '/work/main'), B: resolve(values.b ?? ROOT) };
const rounds = Number(values.rounds ?? 6);
const N = Number(values.n ?? 256);
const C = Number(values.c ?? 32);
const work = mkdtempSync('/dev/shm/iris-ab-');
const modelDir = DEFAULT_MODEL_DIR;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function start(name: string, root: string, flags: string[], nodeFlags: string[], env: Record<string, string>): Promise<{ pid: number; url: string; child: ChildProcess }> {
  const prof = values.profile ? ['--cpu-prof', '--cpu-prof-dir', join(work, `prof-${name}`), '--cpu-prof-interval', '500'] : [];
  const child = spawn(process.execPath, [...nodeFlags, ...prof, '--import', 'tsx', '--import', join(ROOT, 'bench/perf/probe.mjs'), 'src/server.ts', '--host', '127.0.0.1', '--port', '0', '--model', `m=${modelDir}`,
    '--max-queued', '512', '--request-timeout-ms', '600000', '--query-max-cost', '100000', ...flags], { cwd: root, env: { ...process.env, ...env, IRIS_PROBE_DIR: work }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.pipe(createWriteStream(join(work, `${name}.err`)));
  child.stdout!.pipe(createWriteStream(join(work, `${name}.out`))); // the access log, and what node flags such as --trace-gc print
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d; const m = /serving (http:\S+)/.exec(out); if (m) res(m[1]); });
    child.once('exit', (code) => rej(new Error(`${name} exited ${code}`)));
  });
  while ((await fetch(url.replace(/\/graphql$/, '/ready')).catch(() => undefined))?.status !== 200) await sleep(50);
  return { pid: child.pid!, url, child };
}

const requests = distinctRequests();

/** 'KEY=VALUE KEY2=VALUE' → { KEY: 'VALUE', ... }. */
function envOf(text: string | undefined): Record<string, string> {
  return Object.fromEntries((text ?? '').split(' ').filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
}

const servers = {
  A: await start('A', roots.A, values.flagsA?.split(' ').filter(Boolean) ?? [], values.nodeA?.split(' ').filter(Boolean) ?? [], envOf(values.envA)),
  B: await start('B', roots.B, values.flagsB?.split(' ').filter(Boolean) ?? [], values.nodeB?.split(' ').filter(Boolean) ?? [], envOf(values.envB)),
};
const results: Record<'A' | 'B', { total: number; ort: number; outside: number; rps: number }[]> = { A: [], B: [] };
const task = values.generate ? 'generate' : 'caption';
const opts = values.generate ? { maxNewTokens: Number(values.generate), minNewTokens: Number(values.generate) } : { maxNewTokens: 24 };
try {
  for (const k of ['A', 'B'] as const) await runLevel(irisSender(servers[k].url), 4, requests(64, task), opts);
  for (let r = 0; r < rounds; r++) {
    for (const k of (r % 2 ? ['B', 'A'] : ['A', 'B']) as ('A' | 'B')[]) {
      const s = servers[k];
      const syscw = (): number => Number(/syscw: (\d+)/.exec(readFileSync(`/proc/${s.pid}/io`, 'utf8'))?.[1]);
      const w0 = syscw();
      const before = snapshot(s.pid, work);
      const lvl = await runLevel(irisSender(s.url), C, requests(N, task), opts);
      await sleep(600);
      const d = diff(s.pid, before, snapshot(s.pid, work));
      const writes = (syscw() - w0) / N;
      const total = Object.values(d.groups).reduce((a, b) => a + b, 0) / N;
      const ort = Object.values(d.ort).reduce((a, o) => a + o.cpuMs, 0) / N;
      results[k].push({ total, ort, outside: total - ort, rps: lvl.requestsPerSecond });
      console.log(`round ${r + 1} ${k}: total ${total.toFixed(2)} ort ${ort.toFixed(2)} outside ${(total - ort).toFixed(2)} ms/req, ${writes.toFixed(1)} write calls/req, ${lvl.requestsPerSecond.toFixed(1)} req/s${lvl.failed ? ` FAILED ${lvl.failed} ${lvl.firstError}` : ''}`);
    }
  }
  for (const k of ['A', 'B'] as const) console.log(`${k} peak RSS ${(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${servers[k].pid}/status`, 'utf8'))?.[1]) / 1024).toFixed(0)} MB`);
} finally {
  for (const s of Object.values(servers)) s.child.kill('SIGTERM');
  await sleep(3000);
}
const med = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
for (const k of ['A', 'B'] as const) {
  const o = results[k].map((x) => x.outside);
  console.log(`${k} (${roots[k]}): outside onnxruntime median ${med(o).toFixed(2)} [${Math.min(...o).toFixed(2)}–${Math.max(...o).toFixed(2)}], total ${med(results[k].map((x) => x.total)).toFixed(2)}, ort ${med(results[k].map((x) => x.ort)).toFixed(2)}, ${med(results[k].map((x) => x.rps)).toFixed(1)} req/s`);
}
const paired = results.A.map((a, i) => results.B[i].outside - a.outside);
console.log(`B - A outside, paired by round: median ${med(paired).toFixed(2)} [${Math.min(...paired).toFixed(2)}–${Math.max(...paired).toFixed(2)}] ms/req`);
console.log(`work dir ${work}`);
