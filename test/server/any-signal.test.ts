// anySignal: AbortSignal.any's behaviour, without its Node 20 leak (a combined signal
// with an 'abort' listener was never collected: the soak's heap grew ~20 MB/min).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { anySignal } from '../../src/server/any-signal.ts';
import { createDeadline } from '../../src/server/plugins/deadline.ts';
import { createDrain } from '../../src/server/plugins/drain.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** MB the heap keeps after `n` signals made by `make` (each given an abort listener) were dropped and collected. */
async function retainedMb(make: () => AbortSignal, n = 50_000): Promise<number> {
  const settle = async (): Promise<number> => {
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      gc();
    }
    return process.memoryUsage().heapUsed;
  };
  const before = await settle();
  for (let i = 0; i < n; i++) make().addEventListener('abort', () => undefined);
  return ((await settle()) - before) / 1048576;
}
describe('anySignal', () => {
  it('fires with the reason of the first source to abort, at once if one already has', () => {
    const a = new AbortController();
    const b = new AbortController();
    const combined = anySignal([a.signal, b.signal]);
    expect(combined.aborted).toBe(false);
    b.abort('b first');
    a.abort('a later');
    expect(combined.reason).toBe('b first');
    expect(anySignal([new AbortController().signal, AbortSignal.abort('done')]).reason).toBe('done');
  });

  // 50,000 of Node 20's AbortSignal.any with a listener kept about 60 MB.
  it('50,000 combined signals with listeners leave under 8 MB once their sources are gone', async () => {
    expect(await retainedMb(() => anySignal([new AbortController().signal, new AbortController().signal]))).toBeLessThan(8);
  });

  it('so do 50,000 request deadlines (client signal, timer, drain)', async () => {
    const drain = createDrain();
    expect(await retainedMb(() => createDeadline(1, new AbortController().signal, drain).signal)).toBeLessThan(8);
  });
});
