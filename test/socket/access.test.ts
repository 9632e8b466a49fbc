// API keys and rate limits over real sockets: graphql-ws connections (key in the
// connection_init payload or the upgrade request's header) and the openai client.
import { createClient } from 'graphql-ws';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createFakeGenerator } from '../api/support/fake-generator.ts';
import { startIris, type RunningIris } from './support.ts';

const KEY = 'sk-iris-socket-1';
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';
const QUERY = { query: `{ caption(image: { base64: "${PNG}" }) { text } }` };

describe('access control over sockets', () => {
  let iris: RunningIris;
  beforeAll(async () => {
    iris = await startIris({ generator: createFakeGenerator(), config: { access: { apiKeys: [KEY], requestsPerMinute: 3 } } });
  });
  afterAll(() => iris.server.close());

  const ws = (options: { params?: Record<string, unknown>; header?: string }) =>
    createClient({
      url: iris.url.replace('http', 'ws'),
      retryAttempts: 0,
      lazy: true,
      connectionParams: options.params,
      webSocketImpl: class extends WebSocket {
        constructor(url: string, protocols: string[]) {
          super(url, protocols, options.header ? { headers: { authorization: options.header } } : {});
        }
      },
    });

  it('closes a WebSocket connection without a valid key with 4403 Forbidden', async () => {
    for (const params of [undefined, { authorization: 'Bearer sk-wrong-key-1' }]) {
      const client = ws({ params });
      const outcome = await client.iterate(QUERY).next().then(() => 'answered', (e: unknown) => (e as { code?: number }).code);
      expect(outcome).toBe(4403);
      await client.dispose();
    }
  });

  it('accepts the key in connection_init, then rate-limits the key\'s operations (RATE_LIMITED with a retry hint)', async () => {
    const client = ws({ params: { authorization: `Bearer ${KEY}` } });
    const first = await client.iterate(QUERY).next();
    expect(first.value).toEqual({ data: { caption: { text: 'a large blue square' } } });
    // Also over the upgrade request's header; the same key shares the allowance of 3.
    const byHeader = ws({ header: `Bearer ${KEY}` });
    expect((await byHeader.iterate(QUERY).next()).value).toEqual({ data: { caption: { text: 'a large blue square' } } });
    const openai = new OpenAI({ baseURL: iris.url.replace('/graphql', '/v1'), apiKey: KEY, maxRetries: 0 });
    expect((await openai.models.list()).data).toHaveLength(1);
    const limited = await client.iterate(QUERY).next().then((r) => r.value, (e: unknown) => e);
    expect(limited).toEqual([expect.objectContaining({ message: expect.stringMatching(/^rate limit of 3 requests per minute reached; retry in \d+ s$/), extensions: expect.objectContaining({ code: 'RATE_LIMITED' }) })]);
    const refused = await openai.models.list().then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    await client.dispose();
    await byHeader.dispose();
  });

  it('answers the openai client without the key with AuthenticationError', async () => {
    const openai = new OpenAI({ baseURL: iris.url.replace('/graphql', '/v1'), apiKey: 'sk-not-a-key', maxRetries: 0 });
    const error = await openai.models.list().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
