// The playground's route (src/server/playground/serve.ts): the page and its two files at
// fixed paths, nothing from another origin, GraphiQL left at /graphql. The page itself is
// driven in a real browser by test/browser/playground.test.ts.
import { describe, expect, it } from 'vitest';
import { createTestApp } from './support/app.ts';

describe('the playground route', () => {
  const app = createTestApp();
  const get = (path: string, init: RequestInit = {}) => app.yoga.fetch(`http://iris.test${path}`, init);

  it('serves the page at / with its script and stylesheet, all from this origin', async () => {
    const res = await get('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toContain("connect-src 'self'");
    const html = await res.text();
    expect(html).toContain('<title>Iris playground</title>');
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(refs.filter((r) => /^(https?:)?\/\//.test(r))).toEqual([]);
    for (const ref of refs.filter((r) => r.startsWith('/playground/'))) {
      const file = await get(ref);
      expect(file.status, ref).toBe(200);
      expect(await file.text(), ref).not.toMatch(/https?:\/\/(?!example\.com)/);
    }
    expect(refs).toEqual(expect.arrayContaining(['/playground/playground.js', '/playground/playground.css']));
  });

  it('answers HEAD without a body and leaves other paths and methods to yoga', async () => {
    const head = await get('/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect((await get('/playground/serve.ts')).status).toBe(404);
    expect((await get('/playground/../app.ts')).status).toBe(404);
    expect((await get('/', { method: 'POST' })).status).toBe(404);
  });

  it('keeps GraphiQL at /graphql and GraphQL working', async () => {
    const page = await get('/graphql', { headers: { accept: 'text/html' } });
    expect(await page.text()).toContain('GraphiQL');
    const res = await get('/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ models { id } }' }) });
    expect(await res.json()).toEqual({ data: { models: [{ id: 'fake' }] } });
  });
});
