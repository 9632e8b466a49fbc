import { describe, expect, it } from 'vitest';
import { createAdmission } from '../../src/server/admission.ts';
import { IrisError } from '../../src/contract/types.ts';
import { streamGeneration } from '../../schema/stream.ts';

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('admission', () => {
  it('runs up to maxInFlight, queues up to maxQueued, refuses the rest with OVERLOADED', async () => {
    const admission = createAdmission({ maxInFlight: 1, maxQueued: 1 });
    const gate = deferred();
    const first = admission.run(() => gate.promise.then(() => 'first'));
    const second = admission.run(async () => 'second');
    expect(admission.stats()).toEqual({ running: 1, waiting: 1 });
    await expect(admission.run(async () => 'third')).rejects.toMatchObject({ code: 'OVERLOADED' });
    gate.resolve();
    expect(await Promise.all([first, second])).toEqual(['first', 'second']);
    expect(admission.stats()).toEqual({ running: 0, waiting: 0 });
  });

  it('drops a waiter whose signal fires, and frees slots when work throws', async () => {
    const admission = createAdmission({ maxInFlight: 1, maxQueued: 4 });
    const gate = deferred();
    const first = admission.run(() => gate.promise.then(() => { throw new IrisError('BAD_IMAGE', 'x'); }));
    const controller = new AbortController();
    const waiting = admission.run(async () => 'never', controller.signal);
    controller.abort(new Error('client left'));
    await expect(waiting).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(admission.stats().waiting).toBe(0);
    gate.resolve();
    await expect(first).rejects.toMatchObject({ code: 'BAD_IMAGE' });
    expect(await admission.run(async () => 'after')).toBe('after');
  });
});

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
