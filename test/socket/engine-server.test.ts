// `npm start`'s wiring on the engine, over a real socket: concurrent requests share
// batches and get the single-request pipeline's greedy text, a burst beyond the line is
// answered OVERLOADED without harming the rest, and /metrics shows the engine's gauges.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/settings.ts';
import type { IrisServer } from '../../src/server/listen.ts';
import { startServer } from '../../src/server.ts';
import { plainCaptions } from '../engine/support.ts';
import { FIXTURES, waitForReady } from '../helpers.ts';

const QUERY = 'query($i: ImageInput!, $o: GenerationOptions) { caption(image: $i, options: $o) { text finishReason tokens { id } } }';
const OPTIONS = { maxNewTokens: 12, minNewTokens: 8 };

interface Reply {
  data?: { caption: { text: string; tokens: { id: number }[] } } | null;
  errors?: { extensions?: { code?: string } }[];
}

describe('the server on the engine (tiny-random)', () => {
  let server: IrisServer;
  let images: Uint8Array[];
  let expected: string[];
  beforeAll(async () => {
    ({ images, expected } = await plainCaptions(12, OPTIONS));
    const argv = ['--port', '0', '--model', `tiny=${FIXTURES.encoderDecoder}`, '--max-batch-size', '8', '--max-queued', '6'];
    server = await startServer(loadConfig(argv, {}));
    await waitForReady(server.url);
  });
  afterAll(() => server.close());

  const caption = async (image: Uint8Array): Promise<Reply> => {
    const body = JSON.stringify({ query: QUERY, variables: { i: { base64: Buffer.from(image).toString('base64') }, o: OPTIONS } });
    const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return (await res.json()) as Reply;
  };

  it('serves concurrent requests with the same text as one at a time', async () => {
    const replies = await Promise.all(images.slice(0, 6).map(caption));
    replies.forEach((r, i) => {
      expect(r.errors).toBeUndefined();
      expect(r.data?.caption.text).toBe(expected[i]);
    });
  });

  it('answers OVERLOADED beyond the line and still serves the others', async () => {
    const replies = await Promise.all([...images, ...images].map(caption));
    const refused = replies.filter((r) => r.errors?.[0]?.extensions?.code === 'OVERLOADED');
    const served = replies.flatMap((r, i) => (r.data?.caption ? [[r.data.caption.text, expected[i % images.length]]] : []));
    expect(refused.length + served.length).toBe(replies.length);
    expect(served.length).toBeGreaterThanOrEqual(6);
    for (const [text, want] of served) expect(text).toBe(want);
  });

  it('exports queue depth, batch size and KV use in /metrics', async () => {
    const text = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
    expect(text).toMatch(/iris_engine_queue_depth\{model="tiny"\} 0/);
    expect(text).toMatch(/iris_engine_batch_size\{model="tiny"\} 0/);
    expect(text).toMatch(/iris_engine_kv_used_tokens\{model="tiny"\} 0/);
    expect(text).toMatch(/iris_engine_kv_capacity_tokens\{model="tiny"\} 1024/); // 8 rows × (64 positions + 64 patches)
  });
});
