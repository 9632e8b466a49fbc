// The request deadline: its time counts from the request's start, its timer runs only
// while a generation holds it (an AbortSignal.timeout kept each answered request's
// context alive for the whole timeout).
import { describe, expect, it } from 'vitest';
import { createDeadline } from '../../../src/server/plugins/deadline.ts';

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
});
