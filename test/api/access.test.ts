// Access control in-process: API keys on GraphQL and /v1 (flag, env and file), the
// separate /metrics key, per-client request and token limits answered RATE_LIMITED with
// a retry hint, and CORS origins and credentials.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, createConfig, type ConfigInput } from '../../src/config/config.ts';
import { loadConfig } from '../../src/config/settings.ts';
import { createRateLimiter } from '../../src/server/rate-limit.ts';
import { createTestApp } from './support/app.ts';
import type { IrisApp } from '../../src/server/app.ts';

const KEY = 'sk-iris-test-1';
const OTHER = 'sk-iris-test-2';
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';

const app = (config: ConfigInput) => createTestApp({ config });

function send(iris: IrisApp, path: string, init: { key?: string; body?: unknown; headers?: Record<string, string>; method?: string } = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (init.key) headers.authorization = `Bearer ${init.key}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  return iris.yoga.fetch(`http://iris.test${path}`, { method: init.method ?? (init.body === undefined ? 'GET' : 'POST'), headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
}

const caption = { query: `{ caption(image: { base64: "${PNG}" }) { text } }` };
const chat = { model: 'fake', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }] };

describe('API keys', () => {
  const keyed = () => app({ access: { apiKeys: [KEY, OTHER] } });

  it('refuses GraphQL without a key (401, UNAUTHENTICATED, www-authenticate) and with a wrong one', async () => {
    const iris = keyed();
    const none = await send(iris, '/graphql', { body: caption });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(await none.json()).toEqual({ errors: [{ message: 'an API key is required: send Authorization: Bearer <key>', extensions: { code: 'UNAUTHENTICATED' } }] });
    const wrong = await send(iris, '/graphql', { body: caption, key: 'sk-iris-wrong' });
    expect([wrong.status, ((await wrong.json()) as any).errors[0].message]).toEqual([401, 'the API key is not valid']);
    const right = await send(iris, '/graphql', { body: caption, key: OTHER });
    expect([right.status, ((await right.json()) as any).data.caption.text]).toEqual([200, 'a large blue square']);
  });

  it('refuses /v1 without a key in the OpenAI error shape, and serves it with one', async () => {
    const iris = keyed();
    const none = await send(iris, '/v1/chat/completions', { body: chat });
    expect(none.status).toBe(401);
    expect(((await none.json()) as any).error).toMatchObject({ type: 'authentication_error', code: 'UNAUTHENTICATED' });
    expect((await send(iris, '/v1/models')).status).toBe(401);
    expect((await send(iris, '/v1/models', { key: KEY })).status).toBe(200);
    expect((await send(iris, '/v1/chat/completions', { body: chat, key: KEY })).status).toBe(200);
  });

  it('leaves /health, /ready, /metrics and the GraphiQL page open', async () => {
    const iris = keyed();
    await iris.registry.loaded;
    expect((await send(iris, '/health')).status).toBe(200);
    expect((await send(iris, '/ready')).status).toBe(200);
    expect((await send(iris, '/metrics')).status).toBe(200);
    expect((await send(iris, '/graphql', { headers: { accept: 'text/html' } })).status).toBe(200);
  });

  it('needs no key when none is configured', async () => {
    expect((await send(app({}), '/graphql', { body: caption })).status).toBe(200);
  });

  it('reads keys from --api-keys, IRIS_API_KEYS and a keys file (blank lines and # comments skipped)', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'iris-keys-')), 'keys');
    writeFileSync(file, `# staging\n${KEY}\n\n  ${OTHER}  \n`);
    expect(loadConfig(['--api-keys', 'sk-flag-key1,sk-flag-key2'], {}).access.apiKeys).toEqual(['sk-flag-key1', 'sk-flag-key2']);
    expect(loadConfig([], { IRIS_API_KEYS: 'sk-env-key-1' }).access.apiKeys).toEqual(['sk-env-key-1']);
    expect(loadConfig(['--api-keys-file', file], { IRIS_API_KEYS: 'sk-env-key-1' }).access.apiKeys).toEqual(['sk-env-key-1', KEY, OTHER]);
    expect(() => createConfig({ access: { apiKeysFile: join(file, 'missing') } })).toThrow(ConfigError);
    expect(() => createConfig({ access: { apiKeys: ['short'] } })).toThrow(/at least 8 printable characters/);
  });
});

describe('/metrics key', () => {
  it('protects /metrics alone: API keys do not open it, and GraphQL does not need the metrics key', async () => {
    const iris = app({ access: { metricsKey: 'sk-metrics-1', apiKeys: [KEY] } });
    expect((await send(iris, '/metrics')).status).toBe(401);
    expect((await send(iris, '/metrics', { key: KEY })).status).toBe(401);
    const ok = await send(iris, '/metrics', { key: 'sk-metrics-1' });
    expect([ok.status, (await ok.text()).includes('iris_generations_total')]).toEqual([200, true]);
    expect((await send(iris, '/graphql', { body: caption, key: 'sk-metrics-1' })).status).toBe(401);
  });
});

describe('rate limits', () => {
  it('answers the request over the per-minute allowance with 429 RATE_LIMITED, retry-after and a hint; other keys are unaffected', async () => {
    const iris = app({ access: { apiKeys: [KEY, OTHER], requestsPerMinute: 2 } });
    for (let i = 0; i < 2; i++) expect((await send(iris, '/graphql', { body: caption, key: KEY })).status).toBe(200);
    const limited = await send(iris, '/graphql', { body: caption, key: KEY });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('30');
    expect(await limited.json()).toEqual({ errors: [{ message: 'rate limit of 2 requests per minute reached; retry in 30 s', extensions: { code: 'RATE_LIMITED', retryAfterSeconds: 30 } }] });
    const v1 = await send(iris, '/v1/chat/completions', { body: chat, key: KEY });
    expect([v1.status, v1.headers.get('retry-after'), ((await v1.json()) as any).error.type]).toEqual([429, '30', 'rate_limit_error']);
    expect((await send(iris, '/graphql', { body: caption, key: OTHER })).status).toBe(200);
  });

  it('limits generated tokens per minute, charged when a generation finishes', async () => {
    // The fake generator makes 4 tokens per request.
    const iris = app({ access: { apiKeys: [KEY], tokensPerMinute: 6 } });
    expect((await send(iris, '/graphql', { body: caption, key: KEY })).status).toBe(200); // 6 → 2 left
    expect((await send(iris, '/v1/chat/completions', { body: chat, key: KEY })).status).toBe(200); // 2 → -2
    const limited = await send(iris, '/graphql', { body: caption, key: KEY });
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as any).errors[0].message).toBe('rate limit of 6 generated tokens per minute reached; retry in 30 s');
  });

  it('limits by client address when no keys are configured', async () => {
    const iris = app({ access: { requestsPerMinute: 1 } });
    expect((await send(iris, '/graphql', { body: caption })).status).toBe(200);
    expect((await send(iris, '/graphql', { body: caption })).status).toBe(429);
  });

  it('refills continuously: a bucket of 60 per minute gives one back per second (driven clock)', () => {
    let now = 0;
    const limiter = createRateLimiter({ requestsPerMinute: 60, tokensPerMinute: 120 }, () => now);
    for (let i = 0; i < 60; i++) limiter.admit('a');
    expect(() => limiter.admit('a')).toThrow('retry in 1 s');
    now = 1000;
    limiter.admit('a');
    limiter.charge('b', 240); // 120 in debt: two minutes' worth... one minute to get back to zero, and a bit
    expect(() => limiter.admit('b')).toThrow('retry in 61 s');
    now += 61_000;
    limiter.admit('b');
    expect(createRateLimiter({ requestsPerMinute: 0, tokensPerMinute: 0 }).isLimited).toBe(false);
  });
});

describe('CORS', () => {
  const preflight = (iris: IrisApp, origin: string) =>
    iris.yoga.fetch('http://iris.test/graphql', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });

  it('answers any origin by default, without credentials', async () => {
    const res = await preflight(app({}), 'https://anywhere.example');
    expect(res.headers.get('access-control-allow-origin')).toBe('https://anywhere.example');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull(); // yoga's default said true
    expect(res.headers.get('access-control-allow-headers')).toMatch(/authorization/);
  });

  it('answers only listed origins, with credentials when configured', async () => {
    const iris = app({ server: { corsOrigins: ['https://app.example', 'https://admin.example'], corsCredentials: true } });
    const listed = await preflight(iris, 'https://admin.example');
    expect([listed.headers.get('access-control-allow-origin'), listed.headers.get('access-control-allow-credentials')]).toEqual(['https://admin.example', 'true']);
    const other = await preflight(iris, 'https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const post = await send(iris, '/graphql', { body: caption, headers: { origin: 'https://app.example' } });
    expect(post.headers.get('access-control-allow-origin')).toBe('https://app.example');
  });

  it('sends no CORS headers with --cors-origins none, and refuses credentials for any origin', async () => {
    const res = await preflight(createTestApp({ config: { server: loadConfig(['--cors-origins', 'none'], {}).server } }), 'https://app.example');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(() => loadConfig(['--cors-credentials', 'true'], {})).toThrow(/corsCredentials needs server.corsOrigins/);
  });
});
