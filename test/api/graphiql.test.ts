import { describe, expect, it } from 'vitest';
import { createTestApp } from './support/app.ts';

describe('GraphiQL', () => {
  it('is served from the package itself, with no script from a CDN', async () => {
    const app = createTestApp();
    const res = await app.yoga.fetch('http://iris.test/graphql', { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('GraphiQL');
    expect(html).not.toMatch(/<script[^>]+src=["']https?:/);
    expect(html).not.toMatch(/<link[^>]+href=["']https?:/);
  });

  it('opens on an example query (the models, a caption, an answer), not the stock welcome text', async () => {
    const html = await (await createTestApp().yoga.fetch('http://iris.test/graphql', { headers: { accept: 'text/html' } })).text();
    expect(html).toContain('query Models');
    expect(html).toContain('caption(image: $image');
  });

  it('is off when configured off', async () => {
    const app = createTestApp({ config: { server: { graphiql: false } } });
    const res = await app.yoga.fetch('http://iris.test/graphql', { headers: { accept: 'text/html' } });
    expect(res.headers.get('content-type') ?? '').not.toContain('text/html');
  });
});
