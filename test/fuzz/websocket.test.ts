// Property-based fuzzing of GraphQL over WebSocket on a real socket: arbitrary messages
// after the handshake. graphql-ws may close a socket for a protocol violation (4400 and
// the like) but never with 4500 (an internal error), and every operation error carries a
// documented code; the server then serves a fresh client.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createFakeGenerator } from '../api/support/fake-generator.ts';
import { startIris, type RunningIris } from '../socket/support.ts';
import { DOCUMENTED } from './support.ts';

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const RUNS = { numRuns: Number(process.env.IRIS_FUZZ_RUNS ?? 200), interruptAfterTimeLimit: Number(process.env.IRIS_FUZZ_MS ?? 8_000) };

interface Session {
  readonly messages: Array<{ type?: string; payload?: unknown }>;
  readonly closeCode: number | undefined;
}

async function session(url: string, sends: readonly string[]): Promise<Session> {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const messages: Session['messages'] = [];
  let closeCode: number | undefined;
  const closed = new Promise<void>((resolve) => socket.once('close', (code) => ((closeCode = code), resolve())));
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({ type: 'connection_init' }));
  await new Promise<void>((resolve) => {
    const check = (): void => void (messages.some((m) => m.type === 'connection_ack') ? resolve() : setTimeout(check, 2));
    check();
  });
  for (const s of sends) if (socket.readyState === WebSocket.OPEN) socket.send(s);
  // Long enough for a fake generation (4 words) to finish.
  await Promise.race([closed, new Promise((r) => setTimeout(r, 150))]);
  socket.close();
  await closed;
  return { messages, closeCode };
}

describe('fuzz: WebSocket messages', () => {
  let iris: RunningIris;
  let url: string;
  beforeAll(async () => {
    iris = await startIris({ generator: createFakeGenerator() });
    url = iris.url.replace('http', 'ws');
  });
  afterAll(() => iris.server.close());

  it('arbitrary messages and subscribe payloads', async () => {
    const query = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom(
        'subscription($i: ImageInput!) { captionStream(image: $i) { delta } }',
        'query($i: ImageInput!) { caption(image: $i) { text } }',
        '{ models { id } }',
        'subscription { captionStream(',
        'mutation { x }',
        `{ ${'models { '.repeat(3000)}id${' }'.repeat(3000)} }`,
      ),
    );
    const variables = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant({ i: { base64: PNG } }), fc.constant({ i: { upload: 'x' } }), fc.constant({ i: { base64: PNG }, o: { temperature: 1e-40 } }));
    const subscribe = fc.record({ id: fc.oneof(fc.string({ maxLength: 4 }), fc.constant('1')), type: fc.constant('subscribe'), payload: fc.oneof(fc.record({ query, variables, operationName: fc.option(fc.string({ maxLength: 4 })) }), fc.jsonValue({ maxDepth: 2 })) });
    const message = fc.oneof(
      subscribe.map((m) => JSON.stringify(m)),
      fc.record({ id: fc.string({ maxLength: 4 }), type: fc.constantFrom('complete', 'ping', 'pong', 'connection_init', 'next', 'x') }).map((m) => JSON.stringify(m)),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 50 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 4 }), async (sends) => {
        const { messages, closeCode } = await session(url, sends);
        const context = `${sends.join(' | ').slice(0, 400)} -> close ${closeCode}: ${JSON.stringify(messages).slice(0, 400)}`;
        expect(closeCode, context).not.toBe(4500);
        for (const m of messages) {
          const errors = m.type === 'error' ? (m.payload as Array<{ extensions?: { code?: string } }>) : m.type === 'next' ? ((m.payload as { errors?: Array<{ extensions?: { code?: string } }> }).errors ?? []) : [];
          for (const e of errors) {
            const code = e.extensions?.code ?? '(no code)';
            expect(code, context).not.toBe('INTERNAL_SERVER_ERROR');
            expect(DOCUMENTED.has(code), `${code} undocumented: ${context}`).toBe(true);
          }
        }
      }),
      RUNS,
    );
    const healthy = await session(url, [JSON.stringify({ id: 'h', type: 'subscribe', payload: { query: '{ models { id } }' } })]);
    expect(healthy.messages.find((m) => m.type === 'next')?.payload).toEqual({ data: { models: [{ id: 'fake' }] } });
  }, 60_000);
});
