// schema/stream.ts: a generation as an async iterator of pieces, for subscriptions.
import { describe, expect, it } from 'vitest';
import { streamGeneration } from '../../schema/stream.ts';

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
