// npm run soak [-- --seconds 300 --clients 8 --model DIR --label NAME]
// A soak test of `npm start` in its own process: mixed traffic (captions, answers and
// continuations over JSON, multipart uploads, SSE and WebSocket streams) from a few
// clients, about one request in five cancelled part-way (an aborted fetch, an SSE or
// WebSocket stream closed after its first event). Greedy answers must never change: the
// first answer to each (task, image, text) is the reference. Reports requests, errors,
// changed answers, and the server's RSS and V8 heap trends in MB/min (least squares over
// the samples after the first 10 %), written to bench/results/soak-<label>.json
// (gitignored).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { ROOT } from '../test/helpers.ts';
import { startIrisProcess } from './start-env.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, clients: { type: 'string' }, model: { type: 'string' }, label: { type: 'string' } } });
const seconds = Number(values.seconds ?? 300);
const clients = Number(values.clients ?? 8);
const shipped = join(ROOT, 'assets/models/shapes-base');
const modelDir = resolve(values.model ?? (existsSync(join(shipped, 'onnx/decoder_model_merged.onnx')) ? shipped : join(ROOT, 'assets/models/tiny-random')));
const SAMPLES = readdirSync(join(ROOT, 'assets/samples')).filter((f) => f.endsWith('.png')).map((f) => readFileSync(join(ROOT, 'assets/samples', f)));
const OPTIONS = '{ maxNewTokens: 24 }';

interface Job {
  readonly key: string;
  readonly query: string;
  readonly image: Buffer;
}

function jobOf(n: number): Job {
  const image = SAMPLES[n % SAMPLES.length];
  const task = ['caption', 'answer', 'generate'][Math.floor(n / SAMPLES.length) % 3];
  const text = task === 'answer' ? ', question: "what color is the circle?"' : task === 'generate' ? ', prompt: "a large"' : '';
  return { key: `${task}:${n % SAMPLES.length}`, image, query: `${task}(image: $i${text}, options: ${OPTIONS})` };
}

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

/** Least-squares slope of y over x (minutes). */
function slopePerMinute(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

async function main(): Promise<void> {
  const args = ['--import', 'tsx', 'src/server.ts', '--port', '0', '--model', `m=${modelDir}`, '--request-timeout-ms', '120000'];
  const { child, url } = await startIrisProcess(args);
  const ws = createClient({ url: url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
  const counts = { requests: 0, cancelled: 0, errors: 0, changed: 0 };
  const errorSamples: string[] = [];
  const reference = new Map<string, string>();
  const check = (key: string, text: string | undefined, error?: string): void => {
    if (error !== undefined || text === undefined) {
      counts.errors++;
      if (errorSamples.length < 10) errorSamples.push(`${key}: ${error ?? 'no text'}`);
      return;
    }
    const seen = reference.get(key);
    if (seen === undefined) reference.set(key, text);
    else if (seen !== text) counts.changed++;
  };

  const post = (query: string, variables: unknown, signal?: AbortSignal, accept = 'application/json') =>
    fetch(url, { method: 'POST', signal, headers: { 'content-type': 'application/json', accept }, body: JSON.stringify({ query, variables }) });

  const kinds = [
    async (job: Job) => {
      const body = (await (await post(`query($i: ImageInput!) { r: ${job.query} { text } }`, { i: { base64: job.image.toString('base64') } })).json()) as { data?: { r?: { text: string } }; errors?: Array<{ extensions?: { code?: string } }> };
      check(job.key, body.data?.r?.text, body.errors?.[0]?.extensions?.code);
    },
    async (job: Job) => {
      const form = new FormData();
      form.set('operations', JSON.stringify({ query: `query($f: File!) { r: ${job.query.replace('$i', '{ upload: $f }')} { text } }`, variables: { f: null } }));
      form.set('map', JSON.stringify({ 0: ['variables.f'] }));
      form.set('0', new Blob([new Uint8Array(job.image)], { type: 'image/png' }), 'scene.png');
      const body = (await (await fetch(url, { method: 'POST', headers: { 'graphql-require-preflight': '1' }, body: form })).json()) as { data?: { r?: { text: string } }; errors?: Array<{ extensions?: { code?: string } }> };
      check(job.key, body.data?.r?.text, body.errors?.[0]?.extensions?.code);
    },
    async (job: Job) => {
      const stream = job.query.replace(/^(\w+)\(/, '$1Stream(');
      const res = await post(`subscription($i: ImageInput!) { r: ${stream} { done generation { text } } }`, { i: { base64: job.image.toString('base64') } }, undefined, 'text/event-stream');
      const text = await res.text();
      const last = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]) as { data?: { r?: { done: boolean; generation: { text: string } | null } }; errors?: Array<{ extensions?: { code?: string } }> }).at(-1);
      check(job.key, last?.data?.r?.generation?.text, last?.errors?.[0]?.extensions?.code ?? (last?.data?.r?.done ? undefined : 'stream ended early'));
    },
    async (job: Job) => {
      const stream = job.query.replace(/^(\w+)\(/, '$1Stream(');
      let text: string | undefined;
      for await (const event of ws.iterate({ query: `subscription($i: ImageInput!) { r: ${stream} { done generation { text } } }`, variables: { i: { base64: job.image.toString('base64') } } })) {
        const r = (event.data as { r?: { done: boolean; generation: { text: string } | null } } | undefined)?.r;
        if (r?.done) text = r.generation?.text;
        if (event.errors) return check(job.key, undefined, String((event.errors[0] as { extensions?: { code?: string } }).extensions?.code));
      }
      check(job.key, text);
    },
  ];
  const cancellations = [
    async (job: Job) => {
      const stop = new AbortController();
      setTimeout(() => stop.abort(), 5 + Math.random() * 40);
      await post(`query($i: ImageInput!) { r: ${job.query} { text } }`, { i: { base64: job.image.toString('base64') } }, stop.signal).then((r) => r.text()).catch(() => undefined);
    },
    async (job: Job) => {
      const stream = job.query.replace(/^(\w+)\(/, '$1Stream(');
      const res = await post(`subscription($i: ImageInput!) { r: ${stream} { delta } }`, { i: { base64: job.image.toString('base64') } }, undefined, 'text/event-stream');
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      await reader.cancel();
    },
    async (job: Job) => {
      const stream = job.query.replace(/^(\w+)\(/, '$1Stream(');
      const iterator = ws.iterate({ query: `subscription($i: ImageInput!) { r: ${stream} { delta } }`, variables: { i: { base64: job.image.toString('base64') } } });
      await iterator.next();
      await iterator.return?.();
    },
  ];

  const started = performance.now();
  const end = started + seconds * 1000;
  const samples: Array<{ minute: number; rssMb: number; heapMb: number }> = [];
  const sampler = setInterval(async () => {
    const metrics = await (await fetch(url.replace('/graphql', '/metrics'))).text().catch(() => '');
    const heap = Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(metrics)?.[1] ?? NaN) / 1048576;
    samples.push({ minute: (performance.now() - started) / 60_000, rssMb: rssMb(child.pid!), heapMb: heap });
  }, 1000);
  let n = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      const job = jobOf(n++);
      counts.requests++;
      try {
        if (Math.random() < 0.2) {
          counts.cancelled++;
          await cancellations[n % cancellations.length](job);
        } else {
          await kinds[n % kinds.length](job);
        }
      } catch (error) {
        check(job.key, undefined, error instanceof Error ? error.message : String(error));
      }
    }
  }));
  clearInterval(sampler);
  await ws.dispose();
  const health = await fetch(url.replace('/graphql', '/health')).then((r) => r.status).catch(() => 0);
  child.kill('SIGTERM');
  const tail = samples.slice(Math.floor(samples.length / 10)).filter((s) => Number.isFinite(s.heapMb));
  const report = {
    date: new Date().toISOString(), model: modelDir.replace(`${ROOT}/`, ''), seconds, clients, ...counts,
    requestsPerSecond: Number((counts.requests / seconds).toFixed(1)),
    rssMb: { first: Math.round(tail[0]?.rssMb ?? 0), last: Math.round(tail.at(-1)?.rssMb ?? 0), max: Math.round(Math.max(...samples.map((s) => s.rssMb))), trendPerMinute: Number(slopePerMinute(tail.map((s) => [s.minute, s.rssMb])).toFixed(2)) },
    heapMb: { first: Math.round(tail[0]?.heapMb ?? 0), last: Math.round(tail.at(-1)?.heapMb ?? 0), trendPerMinute: Number(slopePerMinute(tail.map((s) => [s.minute, s.heapMb])).toFixed(2)) },
    healthAfter: health, errorSamples,
  };
  console.log(JSON.stringify(report, null, 2));
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  await writeFile(join(ROOT, `bench/results/soak-${values.label ?? new Date().toISOString().slice(0, 16).replace(/:/g, '')}.json`), `${JSON.stringify(report, null, 2)}\n`);
  if (counts.errors > 0 || counts.changed > 0 || health !== 200) process.exitCode = 1;
}

await main();
