// The intake byte budget: on its own, and on a real socket where it must keep the bytes
// of requests being read and decoded under the budget (the rest wait, unread).
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { IrisError, type GenerateHooks, type GenerationRequest, type Generator } from '../../../src/contract/types.ts';
import { createByteBudget } from '../../../src/server/intake/budget.ts';
import { createFakeGenerator } from '../../api/support/fake-generator.ts';
import { scenePng } from '../../api/support/images.ts';
import { startIris } from '../../socket/support.ts';

describe('createByteBudget', () => {
  it('grants in arrival order while the bytes fit, and the next ones as bytes are released', async () => {
    const budget = createByteBudget(100, 1000);
    const a = await budget.acquire(60);
    const order: string[] = [];
    const b = budget.acquire(60).then((r) => (order.push('b'), r));
    const c = budget.acquire(30).then((r) => (order.push('c'), r)); // fits, but waits its turn behind b
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual([]);
    expect(budget.usage()).toEqual({ reserved: 60, waiting: 90 });
    a();
    (await b)();
    (await c)();
    expect(order).toEqual(['b', 'c']);
    expect(budget.usage()).toEqual({ reserved: 0, waiting: 0 });
  });

  it('tryAcquire reserves only what fits now with nothing waiting, and leaves the rest alone', async () => {
    const budget = createByteBudget(100, 1000);
    const a = budget.tryAcquire(60)!;
    expect(budget.usage()).toEqual({ reserved: 60, waiting: 0 });
    expect(budget.tryAcquire(60)).toBeUndefined();
    const b = budget.acquire(60);
    expect(budget.tryAcquire(10)).toBeUndefined(); // fits, but b waits first
    expect(budget.usage()).toEqual({ reserved: 60, waiting: 60 });
    a();
    (await b)();
    budget.tryAcquire(100)!();
    expect(budget.usage()).toEqual({ reserved: 0, waiting: 0 });
  });

  it('a request larger than the budget runs alone; OVERLOADED once the waiting bytes would pass their cap', async () => {
    const budget = createByteBudget(100, 150);
    const big = await budget.acquire(500);
    expect(budget.usage().reserved).toBe(100);
    const waiting = budget.acquire(100);
    await expect(budget.acquire(60)).rejects.toSatisfy((e) => e instanceof IrisError && e.code === 'OVERLOADED');
    big();
    (await waiting)();
  });

  it('reports each burst once it is over: the bytes that passed since the budget was last idle', async () => {
    const bursts: number[] = [];
    const budget = createByteBudget(100, 1000, (bytes) => bursts.push(bytes));
    const first = await budget.acquire(60);
    const second = budget.acquire(60); // waits
    first();
    expect(bursts).toEqual([]); // the second one runs now: not idle yet
    (await second)();
    expect(bursts).toEqual([120]);
    (await budget.acquire(10))();
    expect(bursts).toEqual([120, 10]);
  });

  it('a waiter whose signal fires leaves the line and lets the next one in', async () => {
    const budget = createByteBudget(100, 1000);
    const held = await budget.acquire(100);
    const stop = new AbortController();
    const gone = budget.acquire(50, stop.signal);
    const next = budget.acquire(50);
    stop.abort(new Error('client left'));
    await expect(gone).rejects.toThrow('client left');
    held();
    (await next)();
    expect(budget.usage()).toEqual({ reserved: 0, waiting: 0 });
  });
});

describe('the intake budget on a socket', () => {
  const BODY_BYTES = 40 * 1024;
  let body: string;

  /** A generator that holds every request until `open()`, counting those inside it. */
  function gatedGenerator() {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const fake = createFakeGenerator();
    const state = { running: 0, open };
    const generator: Generator = {
      modelId: 'fake',
      async generate(request: GenerationRequest, hooks?: GenerateHooks) {
        state.running++;
        try {
          await gate;
          return await fake.generate(request, hooks);
        } finally {
          state.running--;
        }
      },
    };
    return { generator, state };
  }

  const send = (url: string) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(async (r) => ({ status: r.status, body: await r.json() }));

  beforeAll(async () => {
    // The base64 field is padded with whitespace (decoding ignores it) to a 40 KB body.
    const png = (await scenePng()).toString('base64');
    body = JSON.stringify({ query: 'query($i: ImageInput!) { caption(image: $i) { text } }', variables: { i: { base64: png + ' '.repeat(BODY_BYTES - png.length) } } });
  });

  it('holds requests beyond the budget unread until earlier ones are answered; all succeed', async () => {
    const { generator, state } = gatedGenerator();
    const iris = await startIris({ generator, config: { limits: { intakeBytes: 100 * 1024 } } });
    try {
      const answers = Promise.all(Array.from({ length: 8 }, () => send(iris.url)));
      // 100 KB admits two 40 KB bodies at once; the other six wait unread.
      await vi.waitFor(() => expect(state.running).toBe(2), { timeout: 10_000 });
      await new Promise((r) => setTimeout(r, 300));
      expect(state.running).toBe(2);
      state.open();
      for (const a of await answers) expect(a).toEqual({ status: 200, body: { data: { caption: { text: 'a large blue square' } } } });
    } finally {
      await iris.server.close();
    }
  });

  it('answers OVERLOADED (503) once 16 budgets of bodies are waiting', async () => {
    const { generator, state } = gatedGenerator();
    const iris = await startIris({ generator, config: { limits: { intakeBytes: 2 * 1024 } } });
    try {
      // Each 40 KB body is over the 2 KB budget, so it runs alone, counted as 2 KB: one runs, 16 wait, 3 are refused.
      const results: Array<{ status: number; body: { errors?: Array<{ extensions: { code: string } }> } }> = [];
      const all = Promise.all(Array.from({ length: 20 }, () => send(iris.url).then((r) => void results.push(r))));
      await vi.waitFor(() => expect(results.length).toBe(3), { timeout: 20_000 });
      expect(state.running).toBe(1);
      for (const r of results) {
        expect(r.status).toBe(503);
        expect(r.body.errors?.[0].extensions.code).toBe('OVERLOADED');
      }
      state.open();
      await all;
      expect(results.filter((r) => r.status === 200)).toHaveLength(17);
    } finally {
      await iris.server.close();
    }
  }, 60_000);
});
