// Scale-out with real components (issue 17): 3 Iris replicas (tiny-random, separate
// processes) behind Debian's HAProxy with the shipped deploy/haproxy/haproxy.cfg (only
// its addresses rewritten), sharing Debian's redis-server, all on free ports of
// 127.0.0.1. Counts, never speed:
//   1. requests are balanced across the 3 replicas;
//   2. with Redis, the embedding-cache hit share beats local caches alone by at least
//      HIT_MARGIN on a seeded popular-images workload;
//   2b. hashing on the routing key (x-iris-image-key) keeps images on one replica (local
//      hits near the ideal) with load max/mean within MAX_SKEW;
//   3. Redis killed mid-run: 0 failed requests (lookups fail over to encoding);
//   4. SIGTERM of a replica with requests in flight: they finish (drain), it exits 0, and
//      load through HAProxy meanwhile loses 0;
//   5. kill -9 of a replica under load: HAProxy's retries lose 0;
//   6. SIGTERM of a replica started with --drain-delay-ms longer than HAProxy's
//      inter × fall, under load through a second backend with retries off: 0 lost.
// Everything started here is stopped in afterAll by its PID, even when a test fails.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../../text/sampling/rng.ts';
import { FIXTURES, ROOT } from '../helpers.ts';
import { freePort, hasHaproxy, hasRedis, HAPROXY, run, startRedis, waitForPort, type Process, type Redis } from './support.ts';

/** Points of hit share that Redis must add over local caches alone (expected here: about 20). */
const HIT_MARGIN = 0.1;
/**
 * Most requests one replica may take, over the mean, when HAProxy hashes on the routing
 * key. hash-balance-factor 125 bounds each server's concurrent load, not its total: 40
 * popular keys on a consistent-hash ring leave the totals less even (1.07 to 1.52 in a dozen runs here).
 */
const MAX_SKEW = 1.75;
const CONCURRENCY = 6;

interface Replica extends Process {
  readonly name: string;
  readonly port: number;
}

/** The shipped config's health-check timing: a replica answering 503 leaves the pool after inter × fall. */
function checkWindowMs(cfg: string): number {
  const match = /\binter (\d+)ms fall (\d+)/.exec(cfg);
  if (!match) throw new Error('deploy/haproxy/haproxy.cfg sets no "inter <n>ms fall <n>"');
  return Number(match[1]) * Number(match[2]);
}

/**
 * The backend section of the shipped config again, as `backend iris_noretry` with L7
 * retries and redispatch off, behind a frontend of its own: what a balancer without
 * retries does, for the drain-delay case.
 */
function withoutRetries(cfg: string, port: number): string {
  const header = /^backend iris\n/m.exec(cfg);
  if (!header) throw new Error('no "backend iris" section');
  const backend = cfg.slice(header.index + header[0].length);
  return `\nfrontend iris_noretry_in\n    bind 127.0.0.1:${port}\n    http-request use-service prometheus-exporter if { path /haproxy-metrics }\n    default_backend iris_noretry\n\nbackend iris_noretry\n    retries 0\n    retry-on none\n    no option redispatch\n${backend}`;
}

/** A distinct 24×24 PNG per index (its own bytes, so its own content hash). */
async function imageOf(index: number): Promise<string> {
  const next = createRng(1000 + index);
  const raw = Buffer.from(Array.from({ length: 24 * 24 * 3 }, () => Math.floor(next() * 256)));
  return (await sharp(raw, { raw: { width: 24, height: 24, channels: 3 } }).png().toBuffer()).toString('base64');
}

/**
 * The seeded workload: `count` requests, 80 % drawn from `popular` images, the rest each
 * a new image. Returns the image index of each request.
 */
function workload(seed: number, count: number, popular: number, firstUnique: number, popularBase = 0): number[] {
  const next = createRng(seed);
  let unique = firstUnique;
  return Array.from({ length: count }, () => (next() < 0.8 ? popularBase + Math.floor(next() * popular) : unique++));
}

const CAPTION = 'query ($i: String!) { caption(image: { base64: $i }, options: { maxNewTokens: 4 }) { text } }';

interface LoadReport {
  readonly ok: number;
  readonly failed: string[];
  readonly servedBy: Record<string, number>;
}

/** A closed loop of CONCURRENCY clients over `bodies`; `onProgress(done)` after each answer. */
async function load(url: string, bodies: readonly string[], onProgress?: (done: number) => void, keys?: readonly string[]): Promise<LoadReport> {
  let nextIndex = 0;
  let done = 0;
  const report = { ok: 0, failed: [] as string[], servedBy: {} as Record<string, number> };
  const client = async (): Promise<void> => {
    while (nextIndex < bodies.length) {
      const index = nextIndex++;
      const body = bodies[index];
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (keys) headers['x-iris-image-key'] = keys[index];
      try {
        const response = await fetch(url, { method: 'POST', headers, body });
        const text = await response.text();
        const answer = (text.startsWith('{') ? JSON.parse(text) : {}) as { data?: { caption?: { text: string } }; errors?: { extensions?: { code?: string } }[] };
        const server = response.headers.get('x-served-by') ?? '?';
        report.servedBy[server] = (report.servedBy[server] ?? 0) + 1;
        if (response.status === 200 && !answer.errors && typeof answer.data?.caption?.text === 'string') report.ok++;
        else report.failed.push(`${response.status} ${answer.errors?.[0]?.extensions?.code ?? ''} via ${server}`);
      } catch (error) {
        report.failed.push(`fetch: ${(error as Error).message} (${String((error as { cause?: unknown }).cause)})`);
      }
      onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  return report;
}

async function metricsOf(replica: Replica): Promise<string> {
  return (await fetch(`http://127.0.0.1:${replica.port}/metrics`)).text();
}

function counter(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Both backends (with retries and without) see the replica UP in the exporter's `text`. */
function isUpIn(text: string, name: string): boolean {
  return ['iris', 'iris_noretry'].every((proxy) => new RegExp(`haproxy_server_status\\{proxy="${proxy}",server="${name}",state="UP"\\} 1`).test(text));
}

describe.skipIf(!hasRedis || !hasHaproxy)('scale-out: 3 replicas, HAProxy, Redis (real processes)', () => {
  let redis: Redis | undefined;
  let haproxy: Process | undefined;
  let slowImages: Server | undefined;
  const replicas: Replica[] = [];
  let frontUrl = '';
  let noRetryUrl = '';
  /** The drain delay of iris1 (the replica SIGTERMed behind the backend without retries): HAProxy's inter × fall + 1 s. */
  let drainDelayMs = 0;
  const extraArgs = new Map<string, string[]>();
  let roundRobinLocalShare = 1;
  let dir = '';
  const images = new Map<number, string>();
  const bodyOf = async (index: number): Promise<string> => {
    if (!images.has(index)) images.set(index, await imageOf(index));
    return JSON.stringify({ query: CAPTION, variables: { i: images.get(index) } });
  };

  async function startReplica(name: string, redisUrl: string, samePort?: number): Promise<Replica> {
    const port = samePort ?? (await freePort());
    const args = ['--import', 'tsx', 'src/server.ts', '--host', '127.0.0.1', '--port', String(port), '--model', `tiny=${FIXTURES.encoderDecoder}`,
      '--redis-url', redisUrl, '--redis-timeout-ms', '250', '--access-log', 'off', '--graphiql', 'false', '--image-workers', '0',
      '--drain-timeout-ms', '20000', '--url-allow', '127.0.0.1',
      // The workload repeats greedy captions of popular images: the result cache would answer
      // them before the embedding tiers measured here are asked, and leave nothing in flight.
      '--result-cache-bytes', '0', ...(extraArgs.get(name) ?? [])];
    const proc = run(process.execPath, args);
    const replica = { ...proc, name, port };
    const at = replicas.findIndex((r) => r.name === name);
    if (at >= 0) replicas[at] = replica;
    else replicas.push(replica);
    return replica; // not waited for: the 3 load side by side, and HAProxy's checks say when they are ready
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iris-scale-out-'));
    redis = await startRedis();
    const shipped = readFileSync(join(ROOT, 'deploy/haproxy/haproxy.cfg'), 'utf8');
    drainDelayMs = checkWindowMs(shipped) + 1_000;
    extraArgs.set('iris1', ['--drain-delay-ms', String(drainDelayMs)]);
    for (const name of ['iris1', 'iris2', 'iris3']) await startReplica(name, redis!.url); // in order: HAProxy's server ids follow it
    // The shipped HAProxy config, with this test's addresses, and the same backend without retries.
    const frontPort = await freePort();
    const noRetryPort = await freePort();
    const base = shipped
      .replace(/bind 127\.0\.0\.1:\d+/, `bind 127.0.0.1:${frontPort}`)
      .replace(/^\s*server iris\d .*$/gm, '')
      .trimEnd() + '\n' + replicas.map((r) => `    server ${r.name} 127.0.0.1:${r.port}`).join('\n') + '\n';
    const cfg = base + withoutRetries(base, noRetryPort);
    expect(cfg).toContain('option httpchk GET /ready');
    writeFileSync(join(dir, 'haproxy.cfg'), cfg);
    haproxy = run(HAPROXY, ['-db', '-f', join(dir, 'haproxy.cfg')]);
    await waitForPort(frontPort);
    frontUrl = `http://127.0.0.1:${frontPort}/graphql`;
    noRetryUrl = `http://127.0.0.1:${noRetryPort}/graphql`;
    // Every replica loaded and seen UP by HAProxy's /ready checks.
    await until(async () => {
      const text = await (await fetch(`http://127.0.0.1:${frontPort}/haproxy-metrics`)).text();
      return replicas.every((r) => isUpIn(text, r.name));
    }, 90_000, 'HAProxy to see 3 replicas UP');
  }, 120_000);

  const isUp = async (name: string): Promise<boolean> => isUpIn(await (await fetch(frontUrl.replace('/graphql', '/haproxy-metrics'))).text(), name);

  afterAll(async () => {
    await Promise.allSettled([...replicas.map((r) => r.stop('SIGKILL')), haproxy?.stop('SIGKILL'), redis?.stop('SIGKILL')]);
    await new Promise<void>((resolve) => (slowImages ? slowImages.close(() => resolve()) : resolve()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('balances requests, and Redis lifts the hit share over local caches by the stated margin', async () => {
    const picks = workload(17, 300, 40, 1000);
    const bodies = await Promise.all(picks.map(bodyOf));
    const report = await load(frontUrl, bodies);
    expect(report.failed).toEqual([]);
    // Balanced: round robin (no routing key), each replica about a third.
    expect(Object.keys(report.servedBy).sort()).toEqual(['iris1', 'iris2', 'iris3']);
    for (const n of Object.values(report.servedBy)) expect(n).toBeGreaterThanOrEqual(0.2 * picks.length);
    // Each replica's counters: a local hit is what a local cache alone would give for the
    // same assignment (a Redis hit is inserted locally just as an encoding would be).
    const texts = await Promise.all(replicas.map(metricsOf));
    const sum = (labels: string): number => texts.reduce((s, t) => s + counter(t, 'iris_embedding_cache_total', labels), 0);
    const localHits = sum('tier="local",result="hit"');
    const redisHits = sum('tier="redis",result="hit"');
    // Two requests for one image in one encoder batch share its encoding and count once:
    // shares are over requests, so such a request counts as no hit (conservative).
    const lookups = picks.length;
    expect(localHits + sum('tier="local",result="miss"')).toBeLessThanOrEqual(lookups);
    const ideal = (picks.length - new Set(picks).size) / picks.length;
    const localShare = localHits / lookups;
    roundRobinLocalShare = localShare;
    const redisShare = (localHits + redisHits) / lookups;
    console.log(`scale-out hit share (300 requests, 80 % on 40 images, round robin over 3): local caches ${(100 * localShare).toFixed(1)} %, with Redis ${(100 * redisShare).toFixed(1)} %, ideal ${(100 * ideal).toFixed(1)} %; served ${JSON.stringify(report.servedBy)}; redis errors ${sum('tier="redis",result="error"')}, timeouts ${sum('tier="redis",result="timeout"')}`);
    expect(redisShare).toBeGreaterThanOrEqual(localShare + HIT_MARGIN);
    expect(redisShare).toBeLessThanOrEqual(ideal + 1e-9);
  }, 120_000);

  it('hashing on the routing key keeps each image on one replica, within the stated load skew', async () => {
    const before = await Promise.all(replicas.map(metricsOf));
    const picks = workload(21, 300, 40, 5000, 10_000); // popular images not seen before
    const bodies = await Promise.all(picks.map(bodyOf));
    const keys = picks.map((i) => createHash('sha256').update(Buffer.from(images.get(i)!, 'base64')).digest('hex'));
    const report = await load(frontUrl, bodies, undefined, keys);
    expect(report.failed).toEqual([]);
    const after = await Promise.all(replicas.map(metricsOf));
    const delta = (labels: string): number => after.reduce((s, t, i) => s + counter(t, 'iris_embedding_cache_total', labels) - counter(before[i], 'iris_embedding_cache_total', labels), 0);
    const localShare = delta('tier="local",result="hit"') / picks.length;
    const mismatches = after.reduce((s, t) => s + counter(t, 'iris_routing_key_checks_total', 'result="mismatch"'), 0);
    const counts = Object.values(report.servedBy);
    const skew = Math.max(...counts) / (picks.length / replicas.length);
    console.log(`scale-out routing key: local hit share ${(100 * localShare).toFixed(1)} % (ideal ${(100 * (picks.length - new Set(picks).size) / picks.length).toFixed(1)} %), load max/mean ${skew.toFixed(2)}, served ${JSON.stringify(report.servedBy)}`);
    expect(mismatches).toBe(0);
    expect(counts.length).toBe(3);
    expect(skew).toBeLessThanOrEqual(MAX_SKEW);
    // Local caches alone, with affinity, beat round robin's local share (measured: 55 % against 46 %).
    expect(localShare).toBeGreaterThanOrEqual(roundRobinLocalShare + 0.05);
  }, 120_000);

  it('loses no request when Redis is killed mid-run', async () => {
    const errorsBefore = (await Promise.all(replicas.map(metricsOf))).reduce((s, t) => s + counter(t, 'iris_embedding_cache_total', 'result="error"') + counter(t, 'iris_embedding_cache_total', 'result="timeout"'), 0);
    const picks = workload(18, 150, 40, 2000);
    const bodies = await Promise.all(picks.map(bodyOf));
    let killed: Promise<void> | undefined;
    const report = await load(frontUrl, bodies, (done) => {
      if (done === 50) killed = redis!.stop('SIGKILL');
    });
    await killed;
    expect(report.failed).toEqual([]);
    expect(report.ok).toBe(150);
    const errorsAfter = (await Promise.all(replicas.map(metricsOf))).reduce((s, t) => s + counter(t, 'iris_embedding_cache_total', 'result="error"') + counter(t, 'iris_embedding_cache_total', 'result="timeout"'), 0);
    expect(errorsAfter).toBeGreaterThan(errorsBefore); // the outage was met, and served as misses
    console.log(`scale-out redis outage: ${report.ok} of ${picks.length} ok, ${errorsAfter - errorsBefore} lookups failed over to encoding`);
  }, 120_000);

  it('drains a replica on SIGTERM: its in-flight requests finish, and load through HAProxy loses none', async () => {
    // Images served slowly by a local server hold requests inside the replica (its URL
    // intake is fetching) until they are released, after SIGTERM.
    const png = Buffer.from(await imageOf(1), 'base64');
    const held: (() => void)[] = [];
    slowImages = createServer((_req, res) => held.push(() => res.writeHead(200, { 'content-type': 'image/png' }).end(png)));
    await new Promise<void>((resolve) => slowImages!.listen(0, '127.0.0.1', resolve));
    const imageUrl = `http://127.0.0.1:${(slowImages.address() as { port: number }).port}/a.png`;
    const target = replicas[1];
    const direct = Array.from({ length: 3 }, () =>
      fetch(`http://127.0.0.1:${target.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'query ($u: String!) { caption(image: { url: $u }, options: { maxNewTokens: 4 }) { text } }', variables: { u: imageUrl } }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { data?: { caption?: { text: string } }; errors?: unknown } })),
    );
    await until(() => held.length === 3, 30_000, 'the 3 requests to reach the image server');
    const bodies = await Promise.all(workload(19, 150, 40, 3000).map(bodyOf));
    const exited = new Promise<number | null>((resolve) => target.child.once('exit', (code) => resolve(code)));
    let released = false;
    const report = await load(frontUrl, bodies, (done) => {
      if (done === 30) target.child.kill('SIGTERM');
      if (done === 60 && !released) {
        released = true;
        for (const release of held) release();
      }
    });
    const answers = await Promise.all(direct);
    expect(await exited).toBe(0);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    for (const a of answers) expect(typeof a.body.data?.caption?.text).toBe('string');
    // The 3 held requests and whatever HAProxy had sent it were in flight; all finished.
    const [, finished, inFlight, cut] = /drained: (\d+) of (\d+) in-flight requests finished, (\d+) ended with SHUTTING_DOWN/.exec(target.output()) ?? [];
    expect(Number(inFlight)).toBeGreaterThanOrEqual(3);
    expect(Number(finished)).toBe(Number(inFlight));
    expect(Number(cut)).toBe(0);
    expect(report.failed).toEqual([]);
    expect(report.ok).toBe(150);
    console.log(`scale-out drain: ${report.ok} of 150 through HAProxy ok, served ${JSON.stringify(report.servedBy)}; ${target.output().match(/drained: [^\n]*/)?.[0]}`);
  }, 120_000);

  it('loses no request when a replica is killed with SIGKILL under load (HAProxy retries and redispatches)', async () => {
    const victim = replicas[2];
    const bodies = await Promise.all(workload(20, 200, 40, 4000).map(bodyOf));
    const report = await load(frontUrl, bodies, (done) => {
      if (done === 60) victim.child.kill('SIGKILL');
    });
    expect(victim.child.signalCode).toBe('SIGKILL');
    expect(report.failed).toEqual([]);
    expect(report.ok).toBe(200);
    expect(report.servedBy.iris3 ?? 0).toBeGreaterThan(0); // it did serve before it died
    console.log(`scale-out kill -9: ${report.ok} of 200 ok, served ${JSON.stringify(report.servedBy)}`);
  }, 120_000);

  it('loses no request in a rolling restart of all 3 replicas under load (SIGTERM, restart on the same port, wait until UP, next)', async () => {
    // The two stopped by the tests above come back first, on their ports.
    for (const r of [...replicas]) if (r.child.exitCode !== null || r.child.signalCode !== null) await startReplica(r.name, redis!.url, r.port);
    await until(async () => (await Promise.all(replicas.map((r) => isUp(r.name)))).every(Boolean), 90_000, 'HAProxy to see 3 replicas UP again');
    const bodies = await Promise.all(workload(21, 120, 40, 5000).map(bodyOf));
    let isRestarting = true;
    const restarts = (async () => {
      try {
        for (const { name } of [...replicas]) {
          const current = replicas.find((r) => r.name === name)!;
          await current.stop('SIGTERM'); // drains: what it holds finishes, /ready says 503 meanwhile
          expect(current.child.exitCode).toBe(0);
          await startReplica(name, redis!.url, current.port);
          await until(() => isUp(name), 90_000, `${name} to be UP after its restart`);
        }
      } finally {
        isRestarting = false;
      }
    })();
    const reports: LoadReport[] = [];
    while (isRestarting) reports.push(await load(frontUrl, bodies)); // load the whole time, round after round
    await restarts;
    const failed = reports.flatMap((r) => r.failed);
    const ok = reports.reduce((n, r) => n + r.ok, 0);
    expect(failed).toEqual([]);
    expect(ok).toBe(reports.length * bodies.length);
    expect(reports.length).toBeGreaterThan(1);
    console.log(`scale-out rolling restart: ${ok} of ${ok + failed.length} ok over ${reports.length} rounds while 3 replicas restarted one by one`);
  }, 300_000);
  it('loses no request when a replica with a drain delay is SIGTERMed under load, with balancer retries off', async () => {
    // iris1 runs with --drain-delay-ms = inter × fall + 1 s: HAProxy takes it out while it still serves.
    const target = replicas.find((r) => r.name === 'iris1')!;
    await until(async () => (await Promise.all(replicas.map((r) => isUp(r.name)))).every(Boolean), 90_000, 'HAProxy to see 3 replicas UP');
    const bodies = await Promise.all(workload(22, 60, 40, 6000).map(bodyOf));
    const exited = new Promise<number | null>((resolve) => target.child.once('exit', (code) => resolve(code)));
    let hasExited = false;
    void exited.then(() => (hasExited = true));
    let isSignalled = false;
    const reports: LoadReport[] = [];
    // Round after round through the frontend without retries, from before the signal until the replica has exited.
    while (!hasExited && reports.length < 100) {
      reports.push(await load(noRetryUrl, bodies, (done) => {
        if (done === 30 && !isSignalled) {
          isSignalled = true;
          target.child.kill('SIGTERM');
        }
      }));
    }
    expect(await exited).toBe(0);
    const failed = reports.flatMap((r) => r.failed);
    const ok = reports.reduce((n, r) => n + r.ok, 0);
    expect(failed).toEqual([]);
    expect(ok).toBe(reports.length * bodies.length);
    // Requests did reach it between the signal and HAProxy's checks taking it out: without
    // the delay each would have been refused (503 SHUTTING_DOWN) and, with no retry, lost.
    const [, accepted] = /(\d+) requests arrived during the \d+ ms drain delay and were accepted/.exec(target.output()) ?? [];
    expect(Number(accepted)).toBeGreaterThan(0);
    // And HAProxy retried or redispatched nothing on that backend.
    const text = await (await fetch(noRetryUrl.replace('/graphql', '/haproxy-metrics'))).text();
    expect(text).toMatch(/^haproxy_backend_retry_warnings_total\{proxy="iris_noretry"\} 0$/m);
    expect(text).toMatch(/^haproxy_backend_redispatch_warnings_total\{proxy="iris_noretry"\} 0$/m);
    console.log(`scale-out drain delay (${drainDelayMs} ms), retries off: ${ok} of ${ok + failed.length} ok over ${reports.length} rounds; ${target.output().match(/drained: [^\n]*/)?.[0]}`);
  }, 120_000);
});
