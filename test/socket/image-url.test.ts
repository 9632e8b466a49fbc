// Image URLs fetched from a local host on 127.0.0.1 (allow-listed), and the ways a fetch
// can go wrong. Nothing here leaves the machine: refused addresses are refused before
// any connection is made.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeGenerator } from '../api/support/fake-generator.ts';
import { codes, createTestApp, gql } from '../api/support/app.ts';
import { scenePng } from '../api/support/images.ts';
import { startImageHost, type ImageHost } from './support.ts';

const CAPTION = 'query($url: String!) { caption(image: { url: $url }) { text } }';

describe('image URLs', () => {
  let host: ImageHost;
  let png: Buffer;
  const generator = createFakeGenerator();
  // The URL timeout covers the whole fetch, every hop included: with 300 ms, a busy
  // machine's first hop alone could use it up, and a refused redirect was reported as a
  // timeout. Only the timeout test runs with the short one; the others have a margin.
  const urlConfig = (timeoutMs: number) => ({ images: { maxBytes: 32 * 1024, url: { allow: ['127.0.0.1'], timeoutMs, maxRedirects: 2 } } });
  const app = createTestApp({ generator, config: urlConfig(30_000) });
  const impatient = createTestApp({ generator, config: urlConfig(300) });

  beforeAll(async () => {
    png = await scenePng();
    host = await startImageHost({
      '/scene.png': (_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(png),
      '/chunked.png': (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.write(png.subarray(0, 100));
        res.end(png.subarray(100));
      },
      '/moved': (_req, res, base) => res.writeHead(302, { location: `${base}/scene.png` }).end(),
      '/relative': (_req, res) => res.writeHead(301, { location: '/moved' }).end(),
      '/loop': (_req, res) => res.writeHead(302, { location: '/loop' }).end(),
      '/to-private': (_req, res, base) => res.writeHead(302, { location: base.replace('127.0.0.1', '127.0.0.2') + '/scene.png' }).end(),
      '/to-ipv6-loopback': (_req, res, base) => res.writeHead(302, { location: base.replace('127.0.0.1', '[::1]') + '/scene.png' }).end(),
      '/to-metadata': (_req, res) => res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end(),
      '/page.html': (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>'),
      '/big.png': (_req, res) => res.writeHead(200, { 'content-type': 'image/png', 'content-length': 40 * 1024 }).end(Buffer.alloc(40 * 1024)),
      '/big-unannounced.png': (_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png', 'transfer-encoding': 'chunked' });
        for (let i = 0; i < 40; i++) res.write(Buffer.alloc(1024));
        res.end();
      },
      '/slow.png': () => undefined, // never answers
    });
  });
  afterAll(() => host.close());

  it.each(['/scene.png', '/chunked.png', '/moved', '/relative'])('fetches %s', async (path) => {
    const before = generator.requests.length;
    const res = await gql(app, CAPTION, { url: host.base + path });
    expect(res.body.errors).toBeUndefined();
    expect(Buffer.from(generator.requests[before].image).equals(png)).toBe(true);
  });

  it.each([
    ['/loop', 'IMAGE_FETCH_FAILED', /more than 2 redirects/],
    ['/to-private', 'URL_NOT_ALLOWED', /127\.0\.0\.2/],
    ['/to-ipv6-loopback', 'URL_NOT_ALLOWED', /::1/],
    ['/to-metadata', 'URL_NOT_ALLOWED', /169\.254\.169\.254/],
    ['/page.html', 'IMAGE_FETCH_FAILED', /content-type "text\/html"/],
    ['/missing.png', 'IMAGE_FETCH_FAILED', /HTTP 404/],
    ['/big.png', 'IMAGE_TOO_LARGE', /limit is 32768/],
    ['/big-unannounced.png', 'IMAGE_TOO_LARGE', /limit of 32768/],
  ])('%s gives %s', async (path, code, message) => {
    const res = await gql(app, CAPTION, { url: host.base + path });
    expect(codes(res)).toEqual([code]);
    expect(res.body.errors?.[0].message).toMatch(message);
  });

  it('/slow.png gives IMAGE_FETCH_FAILED once the URL timeout passes', async () => {
    const res = await gql(impatient, CAPTION, { url: `${host.base}/slow.png` });
    expect(codes(res)).toEqual(['IMAGE_FETCH_FAILED']);
    expect(res.body.errors?.[0].message).toMatch(/longer than 300 ms/);
  });

  it('refuses the same host when it is not allow-listed', async () => {
    const strict = createTestApp({ generator });
    const res = await gql(strict, CAPTION, { url: `${host.base}/scene.png` });
    expect(codes(res)).toEqual(['URL_NOT_ALLOWED']);
  });

  it('IMAGE_FETCH_FAILED when nothing listens', async () => {
    const closed = await startImageHost({});
    await closed.close();
    const res = await gql(app, CAPTION, { url: `${closed.base}/scene.png` });
    expect(codes(res)).toEqual(['IMAGE_FETCH_FAILED']);
  });
});
