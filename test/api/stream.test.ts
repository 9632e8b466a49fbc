// schema/stream.ts: a generation as an async iterator of pieces, for subscriptions.
import { describe, expect, it, vi } from 'vitest';
import { HEAD_HOLD_MS, streamGeneration } from '../../schema/stream.ts';

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('streamGeneration', () => {
  it('aborts the generation as soon as the consumer returns, even between pieces', async () => {
    let seen: AbortSignal | undefined;
    const started = deferred();
    const stream = streamGeneration((hooks) => {
      seen = hooks.signal;
      hooks.onDelta?.({ text: 'a', token: { id: 1, text: 'a' } });
      started.resolve();
      return new Promise(() => undefined); // never finishes by itself
    }, new AbortController().signal);
    expect((await stream.next()).value).toMatchObject({ delta: 'a', done: false });
    const pending = stream.next();
    await stream.return?.();
    expect(seen?.aborted).toBe(true);
    expect(await pending).toEqual({ value: undefined, done: true });
  });
});

describe('streamGeneration signals', () => {
  it('follows the request signal into the generation, and leaves a finished one unaborted', async () => {
    const request = new AbortController();
    let seen: AbortSignal | undefined;
    const hang = streamGeneration((hooks) => ((seen = hooks.signal), new Promise(() => undefined)), request.signal);
    const pending = hang.next();
    request.abort(new Error('timed out'));
    expect((seen?.reason as Error).message).toBe('timed out');
    await hang.return?.();
    await pending;

    const done = streamGeneration(async (hooks) => ((seen = hooks.signal), { text: '' }) as never, new AbortController().signal);
    const events = [];
    for await (const event of done) events.push(event);
    expect(events).toHaveLength(1);
    expect(seen?.aborted).toBe(false);
  });
});

describe('streamGeneration output', () => {
  it('holds the headers back until the first event, HEAD_HOLD_MS at most', async () => {
    vi.useFakeTimers();
    try {
      const calls: string[] = [];
      const output = { writableEnded: false, cork: () => calls.push('cork'), uncork: () => calls.push('uncork') };
      const stream = streamGeneration(() => new Promise(() => undefined), new AbortController().signal, { output }); // nothing, ever
      expect(calls).toEqual(['cork']);
      await vi.advanceTimersByTimeAsync(HEAD_HOLD_MS - 1);
      expect(calls).toEqual(['cork']);
      await vi.advanceTimersByTimeAsync(1);
      await vi.runOnlyPendingTimersAsync(); // the uncork waits for the next turn
      expect(calls).toEqual(['cork', 'uncork']);
      await stream.return?.();
      await vi.runAllTimersAsync();
      expect(calls).toEqual(['cork', 'uncork']); // let go once
    } finally {
      vi.useRealTimers();
    }
  });

  it('corks the response from the start to the first event, and when the generation ends; uncorks each on the next turn unless it ended', async () => {
    const calls: string[] = [];
    const output = { writableEnded: false, cork: () => calls.push('cork'), uncork: () => calls.push('uncork') };
    const finish = deferred();
    const stream = streamGeneration(async (hooks) => {
      hooks.onDelta?.({ text: 'a', token: { id: 1, text: 'a' } });
      await finish.promise;
      hooks.onDelta?.({ text: 'b', token: { id: 2, text: 'b' } });
      return { text: 'ab' } as never;
    }, new AbortController().signal, { output });
    expect(calls).toEqual(['cork']); // the headers wait for the first event
    expect((await stream.next()).value).toMatchObject({ delta: 'a', done: false });
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual(['cork', 'uncork']);
    finish.resolve();
    expect((await stream.next()).value).toMatchObject({ delta: 'b', done: false }); // the last piece goes out corked too
    expect(calls).toEqual(['cork', 'uncork', 'cork']);
    expect((await stream.next()).value).toMatchObject({ done: true });
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual(['cork', 'uncork', 'cork', 'uncork']);

    calls.length = 0;
    const ended = streamGeneration(async () => ({ text: '' }) as never, new AbortController().signal, { output });
    await ended.next();
    output.writableEnded = true; // end() flushed it whole
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual(['cork', 'cork']);
  });
});

describe('streamGeneration coalescing', () => {
  const piece = (i: number) => ({ text: `w${i} `, token: { id: i, text: `w${i}` } });

  it('merges the pieces a slow reader left waiting into one event, text and tokens in order', async () => {
    const finish = deferred<void>();
    let emit!: (i: number) => void;
    const stream = streamGeneration(async (hooks) => {
      emit = (i) => hooks.onDelta?.(piece(i));
      await finish.promise;
      return { text: 'w0 w1 w2 w3 w4 ' } as never;
    }, new AbortController().signal, { coalesce: true });
    emit(0);
    const first = (await stream.next()).value;
    expect(first).toMatchObject({ delta: 'w0 ', done: false, tokens: [{ id: 0 }] });
    for (let i = 1; i < 5; i++) emit(i); // the reader is busy meanwhile
    const merged = (await stream.next()).value;
    expect(merged).toMatchObject({ delta: 'w1 w2 w3 w4 ', done: false, token: { id: 4 } });
    expect(merged.tokens.map((t: { id: number }) => t.id)).toEqual([1, 2, 3, 4]);
    finish.resolve();
    expect((await stream.next()).value).toMatchObject({ done: true, delta: '', tokens: [] });
    expect((await stream.next()).done).toBe(true);
  });

  it('without coalescing hands out one event per piece, however many wait', async () => {
    const stream = streamGeneration(async (hooks) => {
      for (let i = 0; i < 3; i++) hooks.onDelta?.(piece(i));
      return { text: 'w0 w1 w2 ' } as never;
    }, new AbortController().signal);
    const events = [];
    for await (const e of stream) events.push(e);
    expect(events.map((e) => e.delta)).toEqual(['w0 ', 'w1 ', 'w2 ', '']);
    expect(events.map((e) => e.tokens.length)).toEqual([1, 1, 1, 0]);
  });

  it('holds pieces for the interval after an event, but never the first piece nor the end', async () => {
    const intervalMs = 60;
    const finish = deferred<void>();
    let emit!: (i: number) => void;
    const stream = streamGeneration(async (hooks) => {
      emit = (i) => hooks.onDelta?.(piece(i));
      await finish.promise;
      return { text: 'done' } as never;
    }, new AbortController().signal, { coalesce: true, intervalMs });
    const started = performance.now();
    setTimeout(() => emit(0), 5);
    expect((await stream.next()).value).toMatchObject({ delta: 'w0 ' });
    const sentFirst = performance.now();
    expect(sentFirst - started).toBeLessThan(intervalMs);
    // Pieces arriving one by one within the interval go out together when it has passed.
    const second = stream.next();
    emit(1);
    setTimeout(() => emit(2), 10);
    setTimeout(() => emit(3), 20);
    const merged = (await second).value;
    expect(performance.now() - sentFirst).toBeGreaterThanOrEqual(intervalMs - 2);
    expect(merged.delta).toBe('w1 w2 w3 ');
    // The end flushes what waits at once, then the final event.
    const third = stream.next();
    emit(4);
    const beforeEnd = performance.now();
    finish.resolve();
    expect((await third).value).toMatchObject({ delta: 'w4 ', tokens: [{ id: 4 }] });
    expect(performance.now() - beforeEnd).toBeLessThan(intervalMs / 2);
    expect((await stream.next()).value).toMatchObject({ done: true, generation: { text: 'done' } });
  });

  it('delivers the pieces before an error, then throws it', async () => {
    const stream = streamGeneration(async (hooks) => {
      hooks.onDelta?.(piece(0));
      hooks.onDelta?.(piece(1));
      throw new Error('boom');
    }, new AbortController().signal, { coalesce: true, intervalMs: 1000 });
    await Promise.resolve();
    expect((await stream.next()).value).toMatchObject({ delta: 'w0 w1 ' });
    await expect(stream.next()).rejects.toThrow('boom');
  });

  it('a consumer returning while the interval runs aborts the generation and ends at once', async () => {
    let seen: AbortSignal | undefined;
    let emit!: (i: number) => void;
    const stream = streamGeneration((hooks) => {
      seen = hooks.signal;
      emit = (i) => hooks.onDelta?.(piece(i));
      return new Promise(() => undefined);
    }, new AbortController().signal, { coalesce: true, intervalMs: 10_000 });
    emit(0);
    await stream.next();
    emit(1);
    const pending = stream.next(); // waiting out the interval
    await stream.return?.();
    expect(seen?.aborted).toBe(true);
    expect(await pending).toEqual({ value: undefined, done: true });
  });
});

describe('pacedIntervalMs', () => {
  it('is the configured interval up to 8 open streams, then grows in proportion', async () => {
    const { pacedIntervalMs } = await import('../../schema/stream.ts');
    expect(pacedIntervalMs(20, 1)).toBe(20);
    expect(pacedIntervalMs(20, 8)).toBe(20);
    expect(pacedIntervalMs(20, 32)).toBe(80);
    expect(pacedIntervalMs(0, 32)).toBe(0);
  });
});
