// npm run bench:intake [-- --concurrent 40 --image-mb 10 --budget BYTES --release-memory true|false --label NAME]
// Memory at intake under a burst: `npm start` (tiny-random) in its own process, then N
// concurrent requests each carrying a distinct ~10 MB PNG (noise, so it does not
// compress), half as multipart uploads and half as base64 JSON. The server's RSS is
// sampled from /proc every 20 ms: baseline before, peak during, and after the burst
// (5 s later, once every answer is in, and 10 s later), and what the server's release of
// memory after the burst did (iris_memory_releases_total; --release-memory false: the main
// thread's collection only). Results go to bench/results/intake-memory-*.json.
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { ROOT } from '../test/helpers.ts';
import { npmStartEnv, startIrisProcess } from './start-env.ts';

const { values } = parseArgs({ options: { concurrent: { type: 'string' }, 'image-mb': { type: 'string' }, budget: { type: 'string' }, label: { type: 'string' }, 'mmap-threshold': { type: 'string' }, 'release-memory': { type: 'string' } } });
// The server runs with `npm start`'s environment (bench/start-env.ts: glibc's mmap threshold
// fixed at 4 MB, so image-sized buffers go back to the system when freed); `--mmap-threshold
// default` measures glibc's own behaviour instead.
const mmapThreshold = values['mmap-threshold'] ?? npmStartEnv().MALLOC_MMAP_THRESHOLD_ ?? 'default';
const concurrent = Number(values.concurrent ?? 40);
const imageBytes = Number(values['image-mb'] ?? 10) * 1024 * 1024;
const MB = 1024 * 1024;

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function noisePng(seed: number): Promise<Buffer> {
  const side = Math.ceil(Math.sqrt(imageBytes / 3));
  const pixels = Buffer.alloc(side * side * 3);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < pixels.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    pixels[i] = x & 255;
  }
  return sharp(pixels, { raw: { width: side, height: side, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
}

async function main(): Promise<void> {
  const images = await Promise.all(Array.from({ length: concurrent }, (_, i) => noisePng(i + 1)));
  const limit = String(Math.ceil((images[0].length * 4) / 3) + MB);
  const args = ['--import', 'tsx', 'src/server.ts', '--port', '0', '--model', 'tiny=assets/models/tiny-random',
    '--image-max-bytes', String(images[0].length + MB), '--body-limit', limit, '--upload-limit', limit,
    '--max-queued', '512', '--request-timeout-ms', '600000', ...(values.budget ? ['--intake-budget-bytes', values.budget] : []),
    ...(values['release-memory'] ? ['--release-memory', values['release-memory']] : [])];
  const env = mmapThreshold === 'default' ? process.env : { ...process.env, MALLOC_MMAP_THRESHOLD_: mmapThreshold };
  const { child, url } = await startIrisProcess(args, env);
  // The server's own account of its release after the burst (its `iris: memory:` lines).
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
  const query = 'query($i: ImageInput!) { caption(image: $i, options: { maxNewTokens: 8 }) { text } }';
  // Warm up: one small request, then let the heap settle. On a connection of its own: the
  // burst below spends seconds building its bodies before the first byte goes out, and a
  // request sent on the warm-up's idle keep-alive socket just as the server's 5 s idle
  // timeout closes it dies with EPIPE (a client-side race of HTTP keep-alive; seen on a
  // loaded machine in 7 of 9 runs, never with this header).
  const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#888' } }).png().toBuffer();
  await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ query, variables: { i: { base64: small.toString('base64') } } }) });
  await new Promise((r) => setTimeout(r, 2000));
  const baseline = rssMb(child.pid!);
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(child.pid!))), 20);
  const started = performance.now();
  const send = (png: Buffer, i: number): Promise<Response> => {
    if (i % 2 === 0) {
      return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables: { i: { base64: png.toString('base64') } } }) });
    }
    const form = new FormData();
    form.set('operations', JSON.stringify({ query, variables: { i: { upload: null } } }));
    form.set('map', JSON.stringify({ 0: ['variables.i.upload'] }));
    form.set('0', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'noise.png');
    return fetch(url, { method: 'POST', headers: { 'graphql-require-preflight': '1' }, body: form });
  };
  const results = await Promise.all(images.map(async (png, i) => {
    const res = await send(png, i);
    const body = (await res.json()) as { errors?: Array<{ extensions?: { code?: string } }> };
    return body.errors ? (body.errors[0].extensions?.code ?? 'no code') : 'ok';
  }));
  const burstSeconds = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 5000));
  clearInterval(sampler);
  const after = rssMb(child.pid!);
  await new Promise((r) => setTimeout(r, 5000));
  const later = rssMb(child.pid!);
  const metrics = await (await fetch(url.replace(/\/graphql$/, '/metrics'))).text();
  const releases = Object.fromEntries([...metrics.matchAll(/^iris_memory_releases_total\{trim="(\w+)"\} (\d+)/gm)].filter((m) => m[2] !== '0').map((m) => [m[1], Number(m[2])]));
  child.kill('SIGTERM');
  const outcomes: Record<string, number> = {};
  for (const r of results) outcomes[r] = (outcomes[r] ?? 0) + 1;
  const report = {
    date: new Date().toISOString(), concurrent, imageBytes: images[0].length, budget: values.budget ?? 'default', mallocMmapThreshold: mmapThreshold,
    baselineMb: Math.round(baseline), peakMb: Math.round(peak), afterMb: Math.round(after), after10sMb: Math.round(later), burstSeconds: Number(burstSeconds.toFixed(1)), outcomes,
    releaseMemory: values['release-memory'] ?? 'default', memoryReleases: releases, serverSaid: stdout.split('\n').filter((l) => l.startsWith('iris: memory')), loadAverage: loadavg().map((x) => Number(x.toFixed(1))),
  };
  console.log(JSON.stringify(report));
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  await writeFile(join(ROOT, `bench/results/intake-memory-${values.label ?? 'run'}.json`), `${JSON.stringify(report, null, 2)}\n`);
}

await main();
