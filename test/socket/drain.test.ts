// Graceful drain of a real `npm start` process (tiny-random): on SIGTERM/SIGINT /ready
// turns 503 and new requests are refused at once (after --drain-delay-ms, when set), every
// request and SSE stream in flight finishes, then the process exits 0. The engine holds each image load IMAGE_WINDOW_MS
// and decodes one row at a time, so the requests are still in the engine's line when the
// signal comes (the test waits for /metrics to show them all there).
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { scenePng } from '../api/support/images.ts';
import { startReadyIris, type IrisProcess } from './process.ts';
import { readSse } from './support.ts';

const CAPTION = 'query($i: ImageInput!) { caption(image: $i, options: { maxNewTokens: 16 }) { text finishReason } }';
const STREAM = 'subscription($i: ImageInput!) { captionStream(image: $i, options: { maxNewTokens: 16 }) { delta done generation { text } } }';
// Long enough for every request to join the first image batch on a busy machine.
const IMAGE_WINDOW_MS = 2_000;
const REQUESTS = 12;
const STREAMS = 4;

const procs: IrisProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

async function start(extra: string[] = []): Promise<IrisProcess> {
  const proc = await startReadyIris(['--model', 'tiny=assets/models/tiny-random', '--result-cache-bytes', '0', '--max-batch-size', '1', '--image-window-ms', String(IMAGE_WINDOW_MS), ...extra]);
  procs.push(proc);
  return proc;
}

const post = (url: string, query: string, variables: unknown, accept = 'application/json') =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body: JSON.stringify({ query, variables }) });

async function queueDepth(url: string): Promise<number> {
  const metrics = await (await fetch(url.replace('/graphql', '/metrics'))).text();
  return Number(/iris_engine_queue_depth\{model="tiny"\} (\d+)/.exec(metrics)?.[1] ?? 0);
}

async function untilQueued(url: string, n: number): Promise<void> {
  const end = Date.now() + 30_000;
  while ((await queueDepth(url)) < n) {
    if (Date.now() > end) throw new Error(`fewer than ${n} requests reached the engine`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('graceful drain (npm start on tiny-random)', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('%s: requests and SSE streams in flight all finish, new ones are refused, exit 0', async (signal) => {
    const iris = await start();
    const i = { base64: (await scenePng()).toString('base64') };
    const queries = Array.from({ length: REQUESTS }, () => post(iris.url, CAPTION, { i }).then(async (r) => ({ status: r.status, body: await r.json() })));
    const streams = Array.from({ length: STREAMS }, () => post(iris.url, STREAM, { i }, 'text/event-stream').then((r) => readSse(r)));
    // Every one has reached the engine's line (a request still on its way when the signal
    // comes is refused, SHUTTING_DOWN, not in flight).
    await untilQueued(iris.url, REQUESTS + STREAMS);
    iris.child.kill(signal);
    await iris.waitFor(/draining/);

    const ready = await fetch(iris.url.replace('/graphql', '/ready'));
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, draining: true });
    const refused = await post(iris.url, CAPTION, { i });
    expect(refused.status).toBe(503);
    expect((await refused.json()).errors[0].extensions.code).toBe('SHUTTING_DOWN');

    const answers = await Promise.all(queries);
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body.errors).toBeUndefined();
      expect(a.body.data.caption.finishReason).toMatch(/EOS|LENGTH/);
    }
    for (const events of await Promise.all(streams)) {
      expect((events.at(-1) as { data: { captionStream: { done: boolean } } }).data.captionStream.done).toBe(true);
    }
    expect(await iris.exited).toBe(0);
    const drained = /drained: (\d+) of (\d+) in-flight requests finished, 0 ended with SHUTTING_DOWN/.exec(iris.output());
    expect(drained?.[1]).toBe(drained?.[2]);
    expect(Number(drained?.[2])).toBeGreaterThanOrEqual(REQUESTS + STREAMS);
  }, 120_000);

  it('past --drain-timeout-ms what still runs ends with SHUTTING_DOWN, and the process still exits 0', async () => {
    // A 5 s image window: nothing finishes within the 300 ms drain time.
    const iris = await startReadyIris(['--model', 'tiny=assets/models/tiny-random', '--result-cache-bytes', '0', '--image-window-ms', '5000', '--drain-timeout-ms', '300']);
    procs.push(iris);
    const i = { base64: (await scenePng()).toString('base64') };
    const query = post(iris.url, CAPTION, { i }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const stream = post(iris.url, STREAM, { i }, 'text/event-stream').then(async (r) => r.text());
    await untilQueued(iris.url, 2);
    iris.child.kill('SIGTERM');
    const answer = await query;
    expect(answer.body.errors[0].extensions.code).toBe('SHUTTING_DOWN');
    expect(await stream).toMatch(/SHUTTING_DOWN/);
    expect(await iris.exited).toBe(0);
    expect(iris.output()).toMatch(/drained: 0 of 2 in-flight requests finished, 2 ended with SHUTTING_DOWN/);
  }, 120_000);

  it('with --drain-delay-ms: /ready is 503 at once, new requests and WebSocket connections are still served through the delay, refused after it', async () => {
    const DELAY_MS = 3_000;
    // A 6 s image window: the caption sent during the delay is still running after it.
    const iris = await startReadyIris(['--model', 'tiny=assets/models/tiny-random', '--result-cache-bytes', '0', '--image-window-ms', '6000', '--drain-delay-ms', String(DELAY_MS)]);
    procs.push(iris);
    const i = { base64: (await scenePng()).toString('base64') };
    const signalledAt = Date.now();
    iris.child.kill('SIGTERM');
    await iris.waitFor(/draining \(not ready but serving for 3000 ms/);
    const ready = await fetch(iris.url.replace('/graphql', '/ready'));
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, draining: true });
    // Sent within the delay: accepted, and answered after it.
    const during = post(iris.url, CAPTION, { i }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const socket = new WebSocket(iris.url.replace('http', 'ws'), 'graphql-transport-ws');
    const opened = await new Promise<boolean>((resolve) => {
      socket.once('open', () => resolve(true));
      socket.once('error', () => resolve(false));
    });
    expect(opened).toBe(true);
    socket.close();
    // After the delay, new requests are refused; not one before it.
    let refused: Response | undefined;
    while (!refused) {
      const r = await post(iris.url, '{ models { id } }', {});
      if (r.status === 503) refused = r;
      else {
        expect(r.status).toBe(200);
        await r.body?.cancel();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(DELAY_MS);
    expect((await refused.json()).errors[0].extensions.code).toBe('SHUTTING_DOWN');
    const answer = await during;
    expect(answer.status).toBe(200);
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data.caption.finishReason).toMatch(/EOS|LENGTH/);
    expect(await iris.exited).toBe(0);
    // The caption and the `models` polls were accepted during the delay; the caption was still running after it.
    const drained = /drained: (\d+) of (\d+) in-flight requests finished, 0 ended with SHUTTING_DOWN; (\d+) requests arrived during the 3000 ms drain delay and were accepted/.exec(iris.output());
    expect(drained?.[1]).toBe(drained?.[2]);
    expect(Number(drained?.[2])).toBeGreaterThanOrEqual(1);
    expect(Number(drained?.[3])).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it('a second signal exits at once', async () => {
    const iris = await startReadyIris(['--model', 'tiny=assets/models/tiny-random', '--result-cache-bytes', '0', '--image-window-ms', '20000']);
    procs.push(iris);
    const i = { base64: (await scenePng()).toString('base64') };
    const query = post(iris.url, CAPTION, { i }).catch(() => 'lost');
    await untilQueued(iris.url, 1);
    iris.child.kill('SIGTERM');
    await iris.waitFor(/draining/);
    const sent = Date.now();
    iris.child.kill('SIGTERM');
    expect(await iris.exited).toBe(1);
    expect(Date.now() - sent).toBeLessThan(10_000);
    expect(await query).toBe('lost');
  }, 120_000);
});
