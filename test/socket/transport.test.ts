// Over a real socket on 127.0.0.1: multipart upload, streaming over SSE and WebSocket,
// and cancellation when the client goes away (the Generator's signal must fire).
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { createFakeGenerator } from '../api/support/fake-generator.ts';
import { scenePng } from '../api/support/images.ts';
import { readSse, socketWritesDuring, startIris, type RunningIris } from './support.ts';

const WORDS = 'a large blue square to the left of a small red circle';
const STREAM = 'subscription($i: ImageInput!) { captionStream(image: $i) { delta done token { id text } generation { text finishReason } } }';

interface StreamEvent {
  data: { captionStream: { delta: string; done: boolean; generation: { text: string; finishReason: string } | null } };
}

describe('transports', () => {
  const generator = createFakeGenerator({ text: WORDS, stepMs: 5 });
  let iris: RunningIris;
  let base64: string;
  let png: Buffer;
  const clients: Client[] = [];
  // Clients of the main server; the cancellation block uses its own slow server.
  const wsClient = (): Client => {
    const client = createClient({ url: iris.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    png = await scenePng();
    base64 = png.toString('base64');
    iris = await startIris({ generator, config: { limits: { uploadBytes: 64 * 1024 }, images: { maxBytes: 16 * 1024 } } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await iris.server.close();
  });

  const upload = (file: Blob) => {
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: 'query($f: File!) { caption(image: { upload: $f }) { text } }', variables: { f: null } }));
    form.set('map', JSON.stringify({ 0: ['variables.f'] }));
    form.set('0', file, 'scene.png');
    return fetch(iris.url, { method: 'POST', headers: { 'graphql-require-preflight': '1' }, body: form });
  };

  it('takes a multipart upload (GraphQL multipart request spec)', async () => {
    const before = generator.requests.length;
    const res = await upload(new Blob([new Uint8Array(png)], { type: 'image/png' }));
    expect(await res.json()).toEqual({ data: { caption: { text: WORDS } } });
    expect(Buffer.from(generator.requests[before].image).equals(png)).toBe(true);
  });

  it('refuses uploads over the image cap (IMAGE_TOO_LARGE) and over the upload cap (413)', async () => {
    const big = await (await upload(new Blob([Buffer.alloc(20 * 1024)]))).json();
    expect(big.errors[0].extensions.code).toBe('IMAGE_TOO_LARGE');
    const huge = await upload(new Blob([Buffer.alloc(80 * 1024)]));
    expect(huge.status).toBe(413);
    expect((await huge.json()).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('streams over SSE: one event per piece, then the Generation', async () => {
    const res = await fetch(iris.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: STREAM, variables: { i: { base64 } } }),
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events = (await readSse(res)) as StreamEvent[];
    const pieces = events.filter((e) => !e.data.captionStream.done);
    expect(pieces).toHaveLength(WORDS.split(' ').length);
    expect(pieces.map((e) => e.data.captionStream.delta).join('')).toBe(WORDS);
    expect(events.at(-1)?.data.captionStream).toMatchObject({ done: true, generation: { text: WORDS, finishReason: 'EOS' } });
  });

  // Without `token` in the selection, pieces decoded within --stream-interval-ms (20 ms by
  // default; the fake decodes one every 5 ms) share an event: fewer events, same text.
  const MERGED = 'subscription($i: ImageInput!) { captionStream(image: $i) { delta done generation { text } } }';

  it('merges pieces into fewer SSE events when token is not selected; the deltas still make the whole text', async () => {
    const res = await fetch(iris.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: MERGED, variables: { i: { base64 } } }),
    });
    const events = (await readSse(res)) as StreamEvent[];
    const pieces = events.filter((e) => !e.data.captionStream.done);
    expect(pieces.length).toBeGreaterThanOrEqual(2); // the first piece is not held back
    expect(pieces.length).toBeLessThan(WORDS.split(' ').length);
    expect(pieces.map((e) => e.data.captionStream.delta).join('')).toBe(WORDS);
    expect(events.at(-1)?.data.captionStream).toMatchObject({ done: true, generation: { text: WORDS } });
  });

  it('sends the headers with the first piece, and the last pieces, the final event, the completion and the end of the response in one write', async () => {
    const writes = await socketWritesDuring(iris.server.http, async () => {
      const res = await fetch(iris.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: MERGED, variables: { i: { base64 } } }),
      });
      expect(((await readSse(res)) as StreamEvent[]).at(-1)?.data.captionStream.done).toBe(true);
    });
    expect(writes.length).toBeGreaterThanOrEqual(2); // the headers with the first piece, then the end
    expect(writes[0]).toMatch(/^HTTP\/1\.1 200/);
    expect(writes[0]).toContain('"done":false');
    const last = writes.at(-1)!;
    expect(last).toContain('"done":true');
    expect(last).toContain('event: complete');
    expect(last).toMatch(/0\r\n\r\n$/);
  });

  it('keeps one event per piece when a fragment selects token', async () => {
    const query = 'subscription($i: ImageInput!) { captionStream(image: $i) { ...E done } } fragment E on GenerationEvent { delta token { id } }';
    const res = await fetch(iris.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query, variables: { i: { base64 } } }),
    });
    const pieces = ((await readSse(res)) as StreamEvent[]).filter((e) => !e.data.captionStream.done);
    expect(pieces.map((e) => e.data.captionStream.delta)).toEqual(WORDS.split(' ').map((w, i) => (i === 0 ? w : ` ${w}`)));
  });

  it('merges pieces over WebSocket too, text unchanged', async () => {
    const events: StreamEvent[] = [];
    for await (const event of wsClient().iterate({ query: MERGED, variables: { i: { base64 } } })) events.push(event as StreamEvent);
    const pieces = events.filter((e) => !e.data.captionStream.done);
    expect(pieces.length).toBeLessThan(WORDS.split(' ').length);
    expect(pieces.map((e) => e.data.captionStream.delta).join('')).toBe(WORDS);
  });

  it('streams over WebSocket (graphql-ws)', async () => {
    const events: StreamEvent[] = [];
    for await (const event of wsClient().iterate({ query: STREAM, variables: { i: { base64 } } })) events.push(event as StreamEvent);
    expect(events.filter((e) => !e.data.captionStream.done).map((e) => e.data.captionStream.delta).join('')).toBe(WORDS);
    expect(events.at(-1)?.data.captionStream.generation?.text).toBe(WORDS);
  });

  it('answers queries and reports error codes over WebSocket', async () => {
    const client = wsClient();
    const ok = await client.iterate({ query: 'query($i: ImageInput!) { caption(image: $i) { text } }', variables: { i: { base64 } } }).next();
    expect(ok.value).toEqual({ data: { caption: { text: WORDS } } });
    const bad = await client.iterate({ query: 'query($i: ImageInput!) { caption(image: $i, model: "nope") { text } }', variables: { i: { base64 } } }).next();
    expect((bad.value as { errors: Array<{ extensions: { code: string } }> }).errors[0].extensions.code).toBe('MODEL_NOT_FOUND');
  });

  describe('cancellation', () => {
    const slow = createFakeGenerator({ text: WORDS, stepMs: 100 });
    let slowIris: RunningIris;
    beforeAll(async () => {
      slowIris = await startIris({ generator: slow });
    });
    afterAll(() => slowIris.server.close());
    const abortedSoon = (n: number) => vi.waitFor(() => expect(slow.aborted.length).toBe(n), { timeout: 10_000, interval: 20 });

    it('stops the generation when an SSE client disconnects', async () => {
      const res = await fetch(slowIris.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: STREAM, variables: { i: { base64 } } }),
      });
      const events = await readSse(res, (e) => e.length >= 1);
      expect(events).toHaveLength(1);
      await abortedSoon(1);
    });

    it('stops the generation when an HTTP query is abandoned', async () => {
      const controller = new AbortController();
      const started = slow.requests.length;
      const pending = fetch(slowIris.url, {
        method: 'POST',
        signal: controller.signal,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'query($i: ImageInput!) { caption(image: $i) { text } }', variables: { i: { base64 } } }),
      });
      await slow.started(started + 1);
      controller.abort();
      await expect(pending).rejects.toThrow();
      await abortedSoon(2);
    });

    it('stops the generation when a WebSocket subscriber completes, or the socket closes', async () => {
      const client = createClient({ url: slowIris.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
      clients.push(client);
      const iterator = client.iterate({ query: STREAM, variables: { i: { base64 } } });
      await iterator.next();
      await iterator.return?.();
      await abortedSoon(3);

      const other = createClient({ url: slowIris.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
      const second = other.iterate({ query: STREAM, variables: { i: { base64 } } });
      await second.next();
      await other.dispose();
      await abortedSoon(4);
    });
  });
});
