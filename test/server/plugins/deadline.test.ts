// The request deadline: its time counts from the request's start, its timer runs only
// while a generation holds it (an AbortSignal.timeout kept each answered request's
// context alive for the whole timeout).
import { describe, expect, it } from 'vitest';
import { createDeadline } from '../../../src/server/plugins/deadline.ts';
import { createDrain } from '../../../src/server/plugins/drain.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('createDeadline', () => {
  it('expires while held, counting from its creation', async () => {
    const deadline = createDeadline(150, undefined);
    await sleep(100);
    const release = deadline.hold();
    await sleep(200);
    expect(deadline.isExpired()).toBe(true);
    expect(deadline.signal.aborted).toBe(true);
    release();
  });

  it('runs no timer while nothing holds it, and a late hold past the time expires at once', async () => {
    const deadline = createDeadline(50, undefined);
    await sleep(120);
    expect(deadline.isExpired()).toBe(false);
    deadline.hold();
    expect(deadline.isExpired()).toBe(true);
  });

  it('stops its timer when the last hold is released', async () => {
    const deadline = createDeadline(100, undefined);
    const a = deadline.hold();
    const b = deadline.hold();
    a();
    b();
    await sleep(250);
    expect(deadline.isExpired()).toBe(false);
  });

  it('follows the client signal', () => {
    const client = new AbortController();
    const deadline = createDeadline(10_000, client.signal);
    client.abort();
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.isExpired()).toBe(false);
  });

  it('a client that left first is not reported as timed out when the time then runs out', async () => {
    const client = new AbortController();
    const deadline = createDeadline(50, client.signal);
    deadline.hold();
    client.abort(new Error('gone'));
    await sleep(120);
    expect(deadline.isExpired()).toBe(false);
    expect((deadline.signal.reason as Error).message).toBe('gone');
  });

  it('is shut down (not expired) when the drain time runs out, and one made after that at once', () => {
    const drain = createDrain();
    const running = createDeadline(10_000, new AbortController().signal, drain);
    const finished = createDeadline(10_000, undefined, drain);
    expect(running.isShutDown()).toBe(false);
    finished.signal.throwIfAborted();
    drain.cutShort();
    expect(running.signal.aborted).toBe(true);
    expect(running.isShutDown()).toBe(true);
    expect(running.isExpired()).toBe(false);
    const late = createDeadline(10_000, undefined, drain);
    expect(late.isShutDown()).toBe(true);
    expect((late.signal.reason as Error).message).toMatch(/drain time ran out/);
  });
});
