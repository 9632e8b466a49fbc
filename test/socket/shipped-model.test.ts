// `npm start`'s own wiring (default config: the shipped model) over a real socket, on the
// sample scenes: captions by base64, answers by upload, continuations by URL. Skipped
// until assets/models/shapes-base has landed.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/settings.ts';
import type { IrisServer } from '../../src/server/listen.ts';
import { startServer } from '../../src/server.ts';
import { isShippedModelPresent, waitForReady } from '../helpers.ts';
import { startImageHost, type ImageHost } from './support.ts';
import { readSamples, type SampleLabel } from '../golden/make-goldens.ts';

const SAMPLES = new URL('../../assets/samples/', import.meta.url);
type Sample = SampleLabel;

describe.skipIf(!isShippedModelPresent)('npm start on the shipped model', () => {
  let samples: Sample[] = [];
  beforeAll(async () => {
    samples = await readSamples();
  });
  const bytes = (s: Sample) => readFileSync(new URL(s.image, SAMPLES));
  let server: IrisServer;
  let host: ImageHost;

  beforeAll(async () => {
    host = await startImageHost({ '/scene.png': (req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(bytes(samples[Number(new URL(req.url ?? '', 'http://x').searchParams.get('i'))])) });
    server = await startServer(loadConfig(['--port', '0', '--url-allow', '127.0.0.1'], {}));
    await waitForReady(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await host?.close();
  });

  const post = async (body: BodyInit, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    (await (await fetch(server.url, { method: 'POST', headers, body })).json()) as { data: Record<string, { text: string }> };

  it('captions (base64), answers (upload) and continues (URL) the sample scenes', async () => {
    let matches = 0;
    let total = 0;
    for (const [i, s] of samples.entries()) {
      const caption = await post(JSON.stringify({ query: 'query($i: String!) { caption(image: { base64: $i }) { text } }', variables: { i: bytes(s).toString('base64') } }));
      const form = new FormData();
      form.set('operations', JSON.stringify({ query: 'query($f: File!, $q: String!) { answer(image: { upload: $f }, question: $q) { text } }', variables: { f: null, q: s.questions[0].question } }));
      form.set('map', JSON.stringify({ 0: ['variables.f'] }));
      form.set('0', new Blob([new Uint8Array(bytes(s))], { type: 'image/png' }), s.image);
      const answer = (await (await fetch(server.url, { method: 'POST', headers: { 'graphql-require-preflight': '1' }, body: form })).json()) as { data: { answer: { text: string } } };
      const query = 'query($u: String!, $p: String!) { generate(image: { url: $u }, prompt: $p) { text } }';
      const generate = await post(JSON.stringify({ query, variables: { u: `${host.base}/scene.png?i=${i}`, p: s.continuation.prefix } }));
      matches += Number(caption.data.caption.text === s.caption) + Number(answer.data.answer.text === s.questions[0].answer);
      // A continuation's text starts with the space its first word needs: prompt + text reads as the caption.
      matches += Number(`${s.continuation.prefix}${generate.data.generate.text}` === s.continuation.caption);
      total += 3;
    }
    // The model's bar is 95 % on a held-out set; a handful of samples may miss one.
    expect(matches / total).toBeGreaterThanOrEqual(0.8);
  });
});
