// WebSocket operations under the intake byte budget, as HTTP bodies are: an operation
// reserves its payload's size until it completes, so two large ones run one after the
// other; beyond the waiting limit (16 budgets) an operation gets OVERLOADED while the
// socket and its other operations go on; a closed socket gives its reservations back.
import { createClient, type Client } from 'graphql-ws';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { payloadBytes } from '../../src/server/websocket.ts';
import { createFakeGenerator, type FakeGenerator } from '../api/support/fake-generator.ts';
import { scenePng } from '../api/support/images.ts';
import { startIris, type RunningIris } from './support.ts';

const BUDGET = 100_000;
const STREAM = 'subscription($i: ImageInput!) { captionStream(image: $i) { delta done } }';
const WORDS = 'a large blue square to the left of a small red circle';

/** Runs one subscription to its end: the events' `done` flags, or the error code it ended with. */
async function run(client: Client, variables: Record<string, unknown>, onFirst?: () => void): Promise<{ events: number; code?: string }> {
  let events = 0;
  try {
    for await (const e of client.iterate({ query: STREAM, variables })) {
      const errors = (e as { errors?: Array<{ extensions?: { code?: string } }> }).errors;
      if (errors) return { events, code: errors[0].extensions?.code };
      if (events++ === 0) onFirst?.();
    }
    return { events };
  } catch (error) {
    return { events, code: (error as Array<{ extensions?: { code?: string } }>)[0]?.extensions?.code ?? String(error) };
  }
}

describe('WebSocket operations under the intake budget', () => {
  let generator: FakeGenerator;
  let iris: RunningIris;
  let client: Client;
  let base64: string;

  beforeEach(async () => {
    base64 = (await scenePng()).toString('base64');
    generator = createFakeGenerator({ text: WORDS, stepMs: 60 }); // a 12-word stream holds its reservation about 0.7 s
    iris = await startIris({ generator, config: { limits: { intakeBytes: BUDGET } } });
    client = createClient({ url: iris.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
  });
  afterEach(async () => {
    await client.dispose();
    await iris.server.close();
  });

  it('counts a payload by its strings', () => {
    const big = 'x'.repeat(70_000);
    expect(payloadBytes({ i: { base64: big } })).toBeGreaterThanOrEqual(70_000);
    expect(payloadBytes({ i: { base64: big } })).toBeLessThan(70_100);
  });

  it('runs two payloads larger than half the budget one after the other, each to its end', async () => {
    const pad = 'x'.repeat(0.7 * BUDGET); // an extra variable the operation ignores: its bytes still arrive
    const order: string[] = [];
    const first = run(client, { i: { base64 }, pad }, () => order.push('first started')).then((r) => (order.push('first ended'), r));
    await generator.started(1);
    const second = run(client, { i: { base64 }, pad }, () => order.push('second started')).then((r) => (order.push('second ended'), r));
    const [a, b] = await Promise.all([first, second]);
    expect([a.code, b.code]).toEqual([undefined, undefined]);
    expect(a.events).toBeGreaterThan(1);
    expect(b.events).toBeGreaterThan(1);
    expect(order).toEqual(['first started', 'first ended', 'second started', 'second ended']);
  });

  it('answers OVERLOADED beyond 16 budgets waiting, and the socket keeps serving', async () => {
    const pad = 'x'.repeat(0.9 * BUDGET);
    const holder = run(client, { i: { base64 }, pad });
    await generator.started(1);
    const waiting = await Promise.all(Array.from({ length: 20 }, () => run(client, { i: { base64 }, pad })));
    const refused = waiting.filter((r) => r.code === 'OVERLOADED');
    expect(refused.length).toBeGreaterThanOrEqual(3); // 16 of 0.9-budget payloads fit the waiting line, at most 17
    expect(refused.length).toBeLessThanOrEqual(4);
    expect(waiting.filter((r) => r.code === undefined && r.events > 1)).toHaveLength(20 - refused.length);
    expect((await holder).code).toBeUndefined();
    expect((await run(client, { i: { base64 } })).code).toBeUndefined(); // the budget is free again
  }, 90_000);

  it('gives the reservations of a closed socket back', async () => {
    const pad = 'x'.repeat(0.9 * BUDGET);
    const doomed = createClient({ url: iris.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
    const held = run(doomed, { i: { base64 }, pad });
    const queued = run(doomed, { i: { base64 }, pad });
    await generator.started(1);
    await doomed.dispose(); // the running operation and the waiting one both go
    await Promise.allSettled([held, queued]);
    const after = await run(client, { i: { base64 }, pad });
    expect(after.code).toBeUndefined();
    expect(after.events).toBeGreaterThan(1);
  });
});
