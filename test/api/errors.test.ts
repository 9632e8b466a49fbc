// Every error code of the API, each produced by sending the bad input; the line's codes
// (OVERLOADED, TIMEOUT and CANCELLED while queued) by the engine that serves `npm start`.
import { crc32, deflateSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import type { IrisApp } from '../../src/server/app.ts';
import { createFakeGenerator } from './support/fake-generator.ts';
import { captionOnlyFolder, codes, createEngineApp, createTestApp, gql } from './support/app.ts';
import { scenePng, tinyBmp } from './support/images.ts';

const CAPTION = 'query($i: ImageInput!, $o: GenerationOptions, $m: String) { caption(image: $i, options: $o, model: $m) { text finishReason } }';
const ANSWER = 'query($i: ImageInput!, $q: String!) { answer(image: $i, question: $q) { text } }';

async function png64(): Promise<string> {
  return (await scenePng()).toString('base64');
}

/** A valid PNG header claiming width × height, with no pixel data: a decompression bomb's shape. */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

describe('image errors', () => {
  const app = createTestApp({ config: { images: { maxBytes: 64 * 1024, maxPixels: 1024 * 1024 } } });

  it.each([
    ['BAD_IMAGE', 'text that is not base64', 'not base64 at all!'],
    ['BAD_IMAGE', 'base64 of text', Buffer.from('just some text, not an image').toString('base64')],
    ['BAD_IMAGE', 'a truncated PNG', Buffer.concat([(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), Buffer.alloc(20)]).toString('base64')],
    ['UNSUPPORTED_IMAGE_FORMAT', 'a BMP', tinyBmp().toString('base64')],
    ['UNSUPPORTED_IMAGE_FORMAT', 'an SVG', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>').toString('base64')],
    ['UNSUPPORTED_IMAGE_FORMAT', 'a data: URL of text/html', 'data:text/html;base64,PGh0bWw+'],
    ['IMAGE_TOO_LARGE', 'bytes over the cap', Buffer.alloc(70 * 1024, 1).toString('base64')],
    ['IMAGE_TOO_LARGE', 'a PNG claiming 100000×100000 pixels', pngHeader(100_000, 100_000).toString('base64')],
  ])('%s for %s', async (code, _label, base64) => {
    const res = await gql(app, CAPTION, { i: { base64 } });
    expect(res.status).toBe(200);
    expect(res.body.data?.caption).toBeNull();
    expect(codes(res)).toEqual([code]);
  });

  it('IMAGE_TOO_LARGE for pixels over the limit of a real image', async () => {
    const small = createTestApp({ config: { images: { maxPixels: 32 * 32 } } });
    const res = await gql(small, CAPTION, { i: { base64: await png64() } });
    expect(codes(res)).toEqual(['IMAGE_TOO_LARGE']);
    expect(res.body.errors?.[0].message).toMatch(/64×64 pixels; the limit is 1024/);
  });

  it('URL_NOT_ALLOWED for private, loopback and link-local addresses and other schemes', async () => {
    for (const url of ['http://127.0.0.1:9/x.png', 'http://[::1]:9/x.png', 'http://[::ffff:127.0.0.1]:9/x.png', 'http://169.254.169.254/latest', 'http://10.1.2.3/x.png', 'http://localhost:9/x.png', 'file:///etc/passwd']) {
      const res = await gql(app, CAPTION, { i: { url } });
      expect(codes(res), url).toEqual(['URL_NOT_ALLOWED']);
    }
  });

  it('IMAGE_FETCH_FAILED for a URL that cannot be fetched', async () => {
    const res = await gql(app, CAPTION, { i: { url: 'not a url' } });
    expect(codes(res)).toEqual(['IMAGE_FETCH_FAILED']);
  });
});

describe('request errors', () => {
  it('INVALID_OPTIONS names the option and its range', async () => {
    const app = createTestApp();
    const res = await gql(app, CAPTION, { i: { base64: await png64() }, o: { temperature: 99 } });
    expect(codes(res)).toEqual(['INVALID_OPTIONS']);
    expect(res.body.errors?.[0].message).toMatch(/temperature must be a number from 0 to 10/);
    const res2 = await gql(app, CAPTION, { i: { base64: await png64() }, o: { topLogprobs: 50 } });
    expect(res2.body.errors?.[0].message).toMatch(/topLogprobs must be an integer from 0 to 20/);
  });

  it('PROMPT_TOO_LONG for a question over the limit', async () => {
    const app = createTestApp({ config: { limits: { promptChars: 20 } } });
    const res = await gql(app, ANSWER, { i: { base64: await png64() }, q: 'what color is the square over there?' });
    expect(codes(res)).toEqual(['PROMPT_TOO_LONG']);
  });

  it('MODEL_NOT_FOUND for an unknown model', async () => {
    const res = await gql(createTestApp(), CAPTION, { i: { base64: await png64() }, m: 'nope' });
    expect(codes(res)).toEqual(['MODEL_NOT_FOUND']);
  });

  it('TIMEOUT when a generation runs past the request timeout, and the generation is stopped', async () => {
    // Margins for a busy machine: the tiny image's intake fits well inside the 300 ms, the
    // 4 × 400 ms generation does not, and the generator notices the abort at its next step
    // (up to 400 ms after the answer), which is waited for rather than raced.
    const generator = createFakeGenerator({ stepMs: 400 });
    const app = createTestApp({ generator, config: { limits: { requestTimeoutMs: 300 } } });
    const res = await gql(app, CAPTION, { i: { base64: await png64() } });
    expect(codes(res)).toEqual(['TIMEOUT']);
    await vi.waitFor(() => expect(generator.aborted).toHaveLength(1), { timeout: 5_000 });
  });

  it('CANCELLED, not a logged unexpected error, when the operation fails because its request was aborted', async () => {
    const logged: unknown[] = [];
    const generator = createFakeGenerator({ fail: new DOMException('This operation was aborted', 'AbortError') });
    const app = createTestApp({ generator, logUnexpected: (e) => logged.push(e) });
    const res = await gql(app, CAPTION, { i: { base64: await png64() } });
    expect(codes(res)).toEqual(['CANCELLED']);
    expect(logged).toEqual([]);
  });

  it('masks unexpected errors', async () => {
    const logged: unknown[] = [];
    const generator = createFakeGenerator({ fail: new Error('secret: /etc/iris/key') });
    const app = createTestApp({ generator, logUnexpected: (e) => logged.push(e) });
    const res = await gql(app, CAPTION, { i: { base64: await png64() } });
    expect(codes(res)).toEqual(['INTERNAL_SERVER_ERROR']);
    expect(JSON.stringify(res.body)).not.toContain('secret');
    expect(logged).toHaveLength(1);
  });
});

// The engine's own line, on the tiny fixture: an image load waits HOLD_MS for company
// before the encoder runs, and a request whose image is loading is in line, so a test
// fills the line and lets deadlines pass while nothing leaves it.
describe('the engine\'s line (tiny-random)', () => {
  const HOLD_MS = 2_000;
  const OPTIONS = { maxNewTokens: 4 };
  const engineStats = (app: IrisApp) => app.registry.list()[0].engine;

  it('OVERLOADED when the line is full, without harming the requests in it, and /metrics shows the line', async () => {
    const { app, release } = await createEngineApp({ models: { maxQueued: 2, maxBatchSize: 1, imageWindowMs: HOLD_MS } });
    try {
      const image = { base64: await png64() };
      const first = gql(app, CAPTION, { i: image, o: OPTIONS });
      const second = gql(app, CAPTION, { i: image, o: OPTIONS });
      await vi.waitFor(() => expect(engineStats(app)?.queueDepth).toBe(2));
      const third = await gql(app, CAPTION, { i: image, o: OPTIONS });
      expect(codes(third)).toEqual(['OVERLOADED']);
      expect(third.body.errors?.[0].message).toMatch(/0 running, 2 waiting/);
      expect(third.body.errors?.[0]).toMatchObject({ message: expect.stringMatching(/retry in 1 s$/), extensions: { code: 'OVERLOADED', retryAfterSeconds: 1 } });
      const metrics = await (await app.yoga.fetch('http://iris.test/metrics')).text();
      expect(metrics).toContain('iris_engine_queue_depth{model="tiny"} 2');
      expect(metrics).toContain('iris_generations_total{model="tiny",task="caption",outcome="OVERLOADED"} 1');
      for (const res of await Promise.all([first, second])) {
        expect(res.body.errors).toBeUndefined();
        expect(res.body.data?.caption).toMatchObject({ finishReason: expect.stringMatching(/^(EOS|LENGTH)$/) });
      }
    } finally {
      await release();
    }
  });

  it('TIMEOUT while waiting in line, and the place in line is freed', async () => {
    const { app, release } = await createEngineApp({ models: { maxQueued: 1, imageWindowMs: HOLD_MS }, limits: { requestTimeoutMs: 80 } });
    try {
      const image = { base64: await png64() };
      expect(codes(await gql(app, CAPTION, { i: image }))).toEqual(['TIMEOUT']);
      await vi.waitFor(() => expect(engineStats(app)).toMatchObject({ queueDepth: 0, batchSize: 0 }));
      // The line holds one: had the first kept its place, this would be OVERLOADED.
      expect(codes(await gql(app, CAPTION, { i: image }))).toEqual(['TIMEOUT']);
    } finally {
      await release();
    }
  });

  it('CANCELLED when the caller gives up while in line, and a failed request leaves the line too', async () => {
    const { app, release } = await createEngineApp({ models: { maxQueued: 1, imageWindowMs: HOLD_MS } });
    const quick = await createEngineApp({ models: { maxQueued: 1 } });
    try {
      const controller = new AbortController();
      const pending = app.registry.generate('tiny', { task: 'caption', image: await scenePng() }, { signal: controller.signal });
      await vi.waitFor(() => expect(engineStats(app)?.queueDepth).toBe(1));
      controller.abort(new Error('client left'));
      await expect(pending).rejects.toMatchObject({ code: 'CANCELLED' });
      await vi.waitFor(() => expect(engineStats(app)?.queueDepth).toBe(0));
      // A PNG whose header is intact (so intake passes) but whose pixels are cut off fails in the engine.
      const png = await scenePng();
      const truncated = png.subarray(0, Math.floor(png.length / 2)).toString('base64');
      expect(codes(await gql(quick.app, CAPTION, { i: { base64: truncated } }))).toEqual(['BAD_IMAGE']);
      const after = await gql(quick.app, CAPTION, { i: { base64: png.toString('base64') }, o: OPTIONS });
      expect(after.body.errors).toBeUndefined();
    } finally {
      await Promise.all([release(), quick.release()]);
    }
  });

  it('INVALID_OPTIONS for a task the model has no template for', async () => {
    const folder = await captionOnlyFolder();
    const { app, release } = await createEngineApp({}, folder.dir);
    try {
      const res = await gql(app, ANSWER, { i: { base64: await png64() }, q: 'what color is the square?' });
      expect(codes(res)).toEqual(['INVALID_OPTIONS']);
      expect(res.body.errors?.[0].message).toMatch(/does not support task 'answer' \(supported: caption, generate\)/);
    } finally {
      await release();
      await folder.remove();
    }
  });
});

describe('document and body limits (HTTP 400/413 with a code)', () => {
  const app = createTestApp({ config: { limits: { queryDepth: 3, queryAliases: 3, queryCost: 250, bodyBytes: 4096 } } });
  const field = (alias: string) => `${alias}: caption(image: { base64: "AAAA" }) { text }`;

  it.each([
    ['QUERY_TOO_DEEP', '{ caption(image: { base64: "AAAA" }) { tokens { top { id } } } }'],
    ['TOO_MANY_ALIASES', '{ a: models { id } b: models { id } c: models { id } d: models { id } }'],
    ['QUERY_TOO_COSTLY', `{ ${field('a')} ${field('b')} ${field('c')} }`],
    ['QUERY_TOO_COSTLY', `{ ...F ...F ...F } fragment F on Query { caption(image: { base64: "AAAA" }) { text } }`],
  ])('%s', async (code, query) => {
    const res = await gql(app, query);
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual([code]);
  });

  it('answers 400 to Accept: application/json clients too', async () => {
    const response = await app.yoga.fetch('http://iris.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query: `{ ${field('a')} ${field('b')} ${field('c')} }` }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0].extensions.code).toBe('QUERY_TOO_COSTLY');
  });

  it('holds introspection to the same limits (ofType chains do not deepen it)', async () => {
    const ok = await gql(app, '{ __schema { types { name ofType { name ofType { name } } } } }');
    expect(ok.status).toBe(200);
    expect(ok.body.errors).toBeUndefined();
    const res = await gql(app, '{ __schema { types { name fields { name type { name ofType { name ofType { name } } } } } } }');
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(['QUERY_TOO_DEEP']);
  });

  it('PAYLOAD_TOO_LARGE for a body over the cap', async () => {
    const res = await gql(app, CAPTION, { i: { base64: 'A'.repeat(5000) } });
    expect(res.status).toBe(413);
    expect(codes(res)).toEqual(['PAYLOAD_TOO_LARGE']);
  });

  it('413 for a body without a Content-Length that grows over the cap', async () => {
    const body = JSON.stringify({ query: CAPTION, variables: { i: { base64: 'A'.repeat(5000) } } });
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(body));
        controller.close();
      },
    });
    const response = await app.yoga.fetch('http://iris.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(((await response.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });
});
