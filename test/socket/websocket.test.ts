// GraphQL over WebSocket on a real socket: an operation's error ends that operation only.
// A thrown error in graphql-ws's onSubscribe closed the whole socket with 4500, losing
// every other subscription on it.
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createFakeGenerator } from '../api/support/fake-generator.ts';
import { scenePng } from '../api/support/images.ts';
import { startIris, type RunningIris } from './support.ts';

const WORDS = 'a large blue square to the left of a small red circle';
const STREAM = 'subscription($i: ImageInput!) { captionStream(image: $i) { delta done generation { text } } }';

interface Failure {
  message: string;
  extensions?: { code?: string };
}

/** The errors one operation ends with (graphql-ws rejects the iterator with them), or the close event. */
async function failureOf(client: Client, payload: { query: string; variables?: Record<string, unknown> }): Promise<Failure[]> {
  const iterator = client.iterate(payload);
  try {
    const first = await iterator.next();
    const result = first.value as { errors?: Failure[] } | undefined;
    return result?.errors ?? [];
  } catch (error) {
    return error as Failure[];
  }
}

describe('WebSocket operation errors', () => {
  const generator = createFakeGenerator({ text: WORDS, stepMs: 40 });
  let iris: RunningIris;
  let base64: string;
  let client: Client;
  const closes: number[] = [];

  beforeAll(async () => {
    base64 = (await scenePng()).toString('base64');
    iris = await startIris({ generator });
    client = createClient({ url: iris.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, on: { closed: (e) => void closes.push((e as { code: number }).code) } });
  });
  afterAll(async () => {
    await client.dispose();
    await iris.server.close();
  });

  it('syntax errors, refused documents and bad variables end only their own operation; a stream beside them finishes', async () => {
    const events: Array<{ data: { captionStream: { done: boolean; generation: { text: string } | null } } }> = [];
    const stream = (async () => {
      for await (const e of client.iterate({ query: STREAM, variables: { i: { base64 } } })) events.push(e as never);
    })();
    await new Promise((r) => setTimeout(r, 50));

    const syntax = await failureOf(client, { query: 'subscription { captionStream(' });
    expect(syntax[0].extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    const deep = await failureOf(client, { query: `{ ${'models { '.repeat(5000)}id${' }'.repeat(5000)} }` });
    expect(deep[0].extensions?.code).toBe('QUERY_TOO_DEEP');
    const ambiguous = await failureOf(client, { query: 'query A { __typename } query B { __typename }' });
    expect(ambiguous[0].extensions?.code).toBe('OPERATION_RESOLUTION_FAILURE');
    const upload = await failureOf(client, { query: 'query($i: ImageInput!) { caption(image: $i) { text } }', variables: { i: { upload: 'x' } } });
    expect(upload[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(upload[0].message).toMatch(/File takes a file part of a multipart request/);

    await stream;
    expect(closes).toEqual([]);
    expect(events.at(-1)?.data.captionStream.generation?.text).toBe(WORDS);
  });
});

describe('WebSocket operations during a drain', () => {
  it('a running subscription finishes; a new connection is refused; the drain counts it', async () => {
    const generator = createFakeGenerator({ text: WORDS, stepMs: 40 });
    const iris = await startIris({ generator });
    const base64 = (await scenePng()).toString('base64');
    const url = iris.url.replace('http', 'ws');
    const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const events: Array<{ data: { captionStream: { done: boolean; generation: { text: string } | null } } }> = [];
      const stream = (async () => {
        for await (const e of client.iterate({ query: STREAM, variables: { i: { base64 } } })) events.push(e as never);
      })();
      await generator.started(1);
      const drained = iris.server.drain(30_000);
      const late = new WebSocket(url, 'graphql-transport-ws');
      const refused = await new Promise<number>((resolve) => late.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
      expect(refused).toBe(503);
      await stream;
      expect(events.at(-1)?.data.captionStream.generation?.text).toBe(WORDS);
      expect(await drained).toEqual({ inFlight: 1, acceptedDuringDelay: 0, cutShort: 0 });
    } finally {
      await client.dispose();
    }
  });
});
