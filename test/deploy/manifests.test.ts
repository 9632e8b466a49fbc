// The deployment files checked against Iris itself: ports and probe paths against the
// config defaults and the app's real routes, env vars against the settings table, the
// grace period against what a drain needs, the HAProxy config against the routing key.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createConfig, DEFAULTS } from '../../src/config/config.ts';
import { loadConfig, SETTINGS } from '../../src/config/settings.ts';
import { ROUTING_KEY_HEADER } from '../../src/server/plugins/routing-key.ts';
import { TASKS } from '../../src/contract/types.ts';
import { createIrisApp } from '../../src/server/app.ts';
import { DRAIN_FLUSH_MS } from '../../src/server/listen.ts';
import { createFakeGenerator } from '../api/support/fake-generator.ts';

const ROOT = join(import.meta.dirname, '../..');
const K8S = join(ROOT, 'deploy/k8s');
const HAPROXY_CFG = join(ROOT, 'deploy/haproxy/haproxy.cfg');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * The manifests are JSON-compatible YAML (no YAML parser is a dependency): documents
 * separated by `---` lines, `#` comment lines between them. Anything outside that subset
 * fails to parse here, so it cannot slip in unchecked.
 */
export function parseManifest(text: string): Obj[] {
  return text
    .split(/^---[ \t]*$/m)
    .map((doc) => doc.split('\n').filter((line) => !/^\s*#/.test(line)).join('\n').trim())
    .filter((doc) => doc !== '')
    .map((doc) => JSON.parse(doc) as Obj);
}

const docs: Obj[] = readdirSync(K8S)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseManifest(readFileSync(join(K8S, f), 'utf8')));
const find = (kind: string, name: string): Obj => {
  const doc = docs.find((d) => d.kind === kind && d.metadata?.name === name);
  if (!doc) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return doc;
};
const iris = find('Deployment', 'iris');
const container = iris.spec.template.spec.containers[0];
const env: Record<string, string> = Object.fromEntries(container.env.map((e: { name: string; value: string }) => [e.name, e.value]));

/**
 * What a drain on SIGTERM needs before Kubernetes sends SIGKILL, from the drain settings
 * as deployed (else their defaults): the drain delay (/ready 503, still serving), then up
 * to the drain timeout for what runs, then DRAIN_FLUSH_MS for cut-short requests to send
 * their SHUTTING_DOWN, plus 5 s of margin for the process to exit.
 */
const MARGIN_S = 5;
function drainBudgetSeconds(): number {
  const { drainDelayMs, drainTimeoutMs } = loadConfig([], env).server;
  return (drainDelayMs + drainTimeoutMs + DRAIN_FLUSH_MS) / 1000 + MARGIN_S;
}

describe('deploy/k8s manifests', () => {
  it('parse, and every object names its apiVersion, kind and name', () => {
    expect(docs.length).toBeGreaterThanOrEqual(6);
    for (const d of docs) {
      expect(d.apiVersion, JSON.stringify(d).slice(0, 80)).toMatch(/\S/);
      expect(d.kind).toMatch(/\S/);
      expect(d.metadata.name).toMatch(/^[a-z0-9-]+$/);
    }
    expect(() => parseManifest('kind: Deployment\nmetadata:\n  name: x')).toThrow();
  });

  it('sets only real settings, and Iris accepts their values', () => {
    const known = new Set(SETTINGS.map((s) => s.env));
    for (const name of Object.keys(env)) expect(known, `${name} is not in SETTINGS`).toContain(name);
    const config = loadConfig([], env);
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.server.port).toBe(DEFAULTS.server.port);
  });

  it('probes /ready for readiness and /health for liveness on the port Iris listens on', () => {
    const port = DEFAULTS.server.port;
    expect(container.ports.map((p: Obj) => p.containerPort)).toEqual([port]);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/ready', port });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health', port });
    const service = find('Service', 'iris');
    expect(service.spec.ports.map((p: Obj) => p.targetPort)).toEqual([port]);
    expect(service.spec.selector).toEqual(iris.spec.template.metadata.labels);
    expect(iris.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(port));
  });

  it('probes routes the app really serves: /health 200 always, /ready 503 then 200, unknown 404', async () => {
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    const app = createIrisApp({
      config: createConfig({ models: { specs: [{ id: 'fake', dir: '/nonexistent' }] } }),
      load: async () => (await gate, { generator: createFakeGenerator(), tasks: TASKS, attention: false }),
      logUnexpected: () => undefined,
    });
    const status = async (path: string) => (await app.yoga.fetch(`http://iris.test${path}`)).status;
    expect(await status(container.livenessProbe.httpGet.path)).toBe(200);
    expect(await status(container.readinessProbe.httpGet.path)).toBe(503);
    finish();
    await app.registry.loaded;
    expect(await status(container.readinessProbe.httpGet.path)).toBe(200);
    expect(await status(container.livenessProbe.httpGet.path)).toBe(200);
    expect(await status('/no-such-probe')).toBe(404);
  });

  it('gives a terminating pod time to drain: delay + drain timeout + flush + margin', () => {
    const grace = iris.spec.template.spec.terminationGracePeriodSeconds;
    expect(grace).toBeGreaterThanOrEqual(drainBudgetSeconds());
    const { server, limits } = loadConfig([], env);
    // Every request may run to its own deadline before the drain cuts it short.
    expect(server.drainTimeoutMs).toBeGreaterThanOrEqual(limits.requestTimeoutMs);
    // The drain delay outlasts the readiness probe's failing (period × failureThreshold),
    // so endpoints drop the pod while it still serves what they send.
    const { periodSeconds, failureThreshold } = container.readinessProbe;
    expect(server.drainDelayMs / 1000).toBeGreaterThan(periodSeconds * failureThreshold);
  });

  it('requests and limits CPU and memory, and rolls without losing capacity', () => {
    for (const kind of ['requests', 'limits']) {
      expect(container.resources[kind].cpu).toMatch(/\S/);
      expect(container.resources[kind].memory).toMatch(/\S/);
    }
    expect(iris.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('has a PodDisruptionBudget over the Iris pods', () => {
    const pdb = find('PodDisruptionBudget', 'iris');
    expect(pdb.spec.selector.matchLabels).toEqual(iris.spec.selector.matchLabels);
    expect(pdb.spec.maxUnavailable ?? pdb.spec.minAvailable).toBeDefined();
  });

  it('scales the Deployment on iris_engine_queue_depth, a gauge Iris really exports', () => {
    const scaled = find('ScaledObject', 'iris');
    expect(scaled.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'iris' });
    const query: string = scaled.spec.triggers[0].metadata.query;
    expect(query).toContain('iris_engine_queue_depth');
    const metrics = readFileSync(join(ROOT, 'src/server/plugins/metrics.ts'), 'utf8');
    expect(metrics).toContain("'iris_engine_queue_depth'");
    expect(Number(scaled.spec.triggers[0].metadata.threshold)).toBeGreaterThan(0);
    expect(scaled.spec.minReplicaCount).toBeLessThanOrEqual(scaled.spec.maxReplicaCount);
  });

  it('runs Redis with a Service that selects it', () => {
    const redis = find('Deployment', 'iris-redis');
    const service = find('Service', 'iris-redis');
    expect(service.spec.selector).toEqual(redis.spec.template.metadata.labels);
    expect(redis.spec.template.spec.containers[0].ports[0].containerPort).toBe(service.spec.ports[0].targetPort);
    expect(redis.spec.template.spec.containers[0].args).toContain('allkeys-lru');
    // Iris points at that Service, through its own setting.
    const iris = find('Deployment', 'iris');
    const env = Object.fromEntries((iris.spec.template.spec.containers[0].env as { name: string; value: string }[]).map((e) => [e.name, e.value]));
    const url = new URL(loadConfig([], env).cache.redisUrl!);
    expect(url.hostname).toBe(service.metadata.name);
    expect(Number(url.port)).toBe(service.spec.ports[0].port);
  });
});

/** The `backend <name>` section's directives, one string per line, comments dropped. */
function haproxySection(text: string, header: string): string[] {
  const lines = text.split('\n').map((l) => l.replace(/#.*/, '').trimEnd());
  const start = lines.findIndex((l) => l.trim() === header);
  if (start < 0) return [];
  const body: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^\S/.test(line)) break;
    if (line.trim()) body.push(line.trim().replace(/\s+/g, ' '));
  }
  return body;
}

describe('deploy/haproxy/haproxy.cfg', () => {
  const cfg = readFileSync(HAPROXY_CFG, 'utf8');
  const backend = haproxySection(cfg, 'backend iris');
  const defaults = haproxySection(cfg, 'defaults');
  const all = [...defaults, ...backend];

  it('health-checks /ready on every server', () => {
    expect(backend).toContain('option httpchk GET /ready');
    expect(backend.some((l) => /^default-server .*\bcheck\b/.test(l))).toBe(true);
    const servers = backend.filter((l) => l.startsWith('server '));
    expect(servers.length).toBeGreaterThanOrEqual(2);
  });

  it('hashes consistently on the routing-key header Iris reads', () => {
    expect(backend).toContain(`balance hdr(${ROUTING_KEY_HEADER})`);
    expect(backend).toContain('hash-type consistent');
    const factor = backend.find((l) => l.startsWith('hash-balance-factor '));
    expect(Number(factor?.split(' ')[1])).toBeGreaterThan(100);
  });

  it('retries small requests on another server', () => {
    const retries = all.find((l) => l.startsWith('retries '));
    expect(Number(retries?.split(' ')[1])).toBeGreaterThan(0);
    expect(all.find((l) => l.startsWith('retry-on '))).toMatch(/conn-failure/);
    expect(all.some((l) => l.startsWith('option redispatch'))).toBe(true);
  });

  const haproxy = spawnSync('haproxy', ['-v']).status === 0;
  const name = haproxy ? 'passes haproxy -c' : 'haproxy -c SKIPPED: haproxy is not installed (apt-get install haproxy)';
  it.skipIf(!haproxy)(name, () => {
    const out = execFileSync('haproxy', ['-c', '-f', HAPROXY_CFG], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toContain('Configuration file is valid');
    // The same check refuses a broken copy, so a pass above means something.
    const dir = mkdtempSync(join(tmpdir(), 'iris-haproxy-'));
    try {
      const broken = join(dir, 'haproxy.cfg');
      writeFileSync(broken, cfg.replace('hash-type consistent', 'hash-type no-such-type'));
      expect(spawnSync('haproxy', ['-c', '-f', broken]).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/Dockerfile', () => {
  const file = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  const instructions = file.split('\n').filter((l) => /^[A-Z]+\s/.test(l));

  it('runs exactly npm ci then npm start, listening on every interface', () => {
    const runs = instructions.filter((l) => l.startsWith('RUN '));
    expect(runs.some((l) => l === 'RUN npm ci')).toBe(true);
    expect(instructions.filter((l) => l.startsWith('CMD '))).toEqual(['CMD ["npm", "start"]']);
    expect(file).toMatch(/HOST=0\.0\.0\.0/);
    // The image that runs is the last stage's.
    expect(instructions.filter((l) => l.startsWith('FROM ')).at(-1)).toMatch(/^FROM node:20-bookworm-slim$/);
  });

  it('npm ci has the sources its install and prepare steps build from', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.install).toBe('node bin/build-native.mjs');
    expect(scripts.prepare).toBe('node bin/build-dist.mjs');
    const final = instructions.slice(instructions.indexOf('FROM node:20-bookworm-slim'));
    expect(final.indexOf('COPY . .')).toBeGreaterThan(-1);
    expect(final.indexOf('COPY . .')).toBeLessThan(final.indexOf('RUN npm ci'));
  });

  it('the malloc_trim addon is built in a stage with a compiler, on the same Debian and Node, and copied in after npm ci', () => {
    const stages = instructions.filter((l) => l.startsWith('FROM '));
    expect(stages).toEqual(['FROM node:20-bookworm AS native', 'FROM node:20-bookworm-slim']);
    expect(instructions).toContain('RUN node bin/build-native.mjs && test -f native/malloc-trim.node');
    const final = instructions.slice(instructions.indexOf('FROM node:20-bookworm-slim'));
    expect(final.indexOf('COPY --from=native /app/native/malloc-trim.node native/')).toBeGreaterThan(final.indexOf('RUN npm ci'));
    // A build from the context would be replaced, but it must not be sent at all.
    expect(readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n')).toEqual(expect.arrayContaining(['node_modules', 'dist', 'native/*.node']));
  });

  it('sets only real settings in ENV, with values Iris accepts', () => {
    // ENV instructions with their backslash-continued lines.
    const body = file.replace(/\\\n/g, ' ').split('\n').filter((l) => l.startsWith('ENV ')).join(' ');
    const pairs = Object.fromEntries([...body.matchAll(/([A-Z_]+)=(\S+)/g)].map((m) => [m[1], m[2]]));
    expect(Object.keys(pairs).length).toBeGreaterThan(0);
    const known = new Set(SETTINGS.map((s) => s.env));
    for (const name of Object.keys(pairs)) expect(known, `${name} is not in SETTINGS`).toContain(name);
    expect(loadConfig([], pairs).server).toMatchObject({ host: '0.0.0.0', port: DEFAULTS.server.port });
  });

  it('installs Debian packages only when training is asked for', () => {
    const apt = instructions.filter((l) => l.startsWith('RUN ') && /apt-get|install-deps/.test(l));
    expect(apt.length).toBeGreaterThan(0);
    for (const line of apt) expect(line).toMatch(/if \[ "\$WITH_TRAINING" = "1" \]/);
    expect(existsSync(join(ROOT, 'training/install-deps.sh'))).toBe(true);
  });
});
