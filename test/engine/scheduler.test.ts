// The scheduler and the KV budget on plain records: no model, no tensors.
import { describe, expect, it } from 'vitest';
import { KvBudget } from '../../src/engine/kv-budget.ts';
import { RequestStatus, type SchedulerEntry } from '../../src/engine/request.ts';
import { Scheduler, type SchedulerOptions } from '../../src/engine/scheduler.ts';

interface Fake extends SchedulerEntry {
  numTokens: number;
}

let nextId = 1;
function fake(numTokens: number, maxTokens = numTokens + 16): Fake {
  return { id: nextId++, status: RequestStatus.Loading, numTokens, maxTokens };
}

function scheduler(options: Partial<SchedulerOptions> & { capacity?: number; cross?: number } = {}): Scheduler<Fake> {
  const budget = new KvBudget({ capacityTokens: options.capacity ?? 1000, crossTokensPerRow: options.cross ?? 0 });
  return new Scheduler<Fake>({ maxBatchSize: 8, maxQueued: 16, budget, ...options });
}

function ready(s: Scheduler<Fake>, ...entries: Fake[]): Fake[] {
  for (const e of entries) {
    s.add(e);
    s.markReady(e);
  }
  return entries;
}

/** One decode step's growth, as the engine's postprocess would leave it. */
function grow(...entries: Fake[]): void {
  for (const e of entries) e.numTokens++;
}

describe('KvBudget', () => {
  it('counts a padded batch: rows × longest row, plus cross-attention rows', () => {
    const budget = new KvBudget({ capacityTokens: 100, crossTokensPerRow: 10 });
    expect(budget.footprint([])).toBe(0);
    expect(budget.footprint([3, 7, 5])).toBe(3 * (7 + 10));
    expect(budget.canHold([40, 40])).toBe(true); // 2 × 50
    expect(budget.canHold([40, 41])).toBe(false);
    expect(budget.canEverHold(90)).toBe(true);
    expect(budget.canEverHold(91)).toBe(false);
  });

  it('rejects a capacity or cross count that is not a whole number, restating the contract', () => {
    expect(() => new KvBudget({ capacityTokens: 0, crossTokensPerRow: 0 })).toThrow(/capacityTokens must be an integer >= 1/);
    expect(() => new KvBudget({ capacityTokens: 10, crossTokensPerRow: 1.5 })).toThrow(/crossTokensPerRow/);
  });
});

describe('Scheduler', () => {
  it('admits ready requests in arrival order and appends them after the running rows', () => {
    const s = scheduler();
    const [a, b] = ready(s, fake(4), fake(6));
    const first = s.schedule();
    expect(first.prefill).toEqual([a, b]);
    expect(first.decode).toEqual([]);
    expect(first.numKvTokens).toBe(2 * 6);
    grow(a, b);
    const [c] = ready(s, fake(3));
    const second = s.schedule();
    expect(second.decode).toEqual([a, b]);
    expect(second.prefill).toEqual([c]);
    expect([a, b, c].map((e) => e.status)).toEqual([RequestStatus.Running, RequestStatus.Running, RequestStatus.Running]);
  });

  it('lets a request whose image is still loading be overtaken, without blocking the line', () => {
    const s = scheduler();
    const slow = fake(4);
    s.add(slow);
    const [quick] = ready(s, fake(5));
    expect(s.schedule().prefill).toEqual([quick]);
    s.markReady(slow);
    expect(s.schedule().prefill).toEqual([slow]);
  });

  it('caps the batch at maxBatchSize; 1 means one request at a time', () => {
    const s = scheduler({ maxBatchSize: 1 });
    const [a, b] = ready(s, fake(4), fake(4));
    expect(s.schedule().prefill).toEqual([a]);
    grow(a);
    expect(s.schedule()).toMatchObject({ decode: [a], prefill: [] });
    s.finish(a);
    const next = s.schedule();
    expect(next.retire).toEqual([a.id]);
    expect(next.prefill).toEqual([b]);
  });

  it('answers OVERLOADED beyond the waiting bound and leaves running requests alone', () => {
    const s = scheduler({ maxBatchSize: 1, maxQueued: 2 });
    const [running] = ready(s, fake(4));
    s.schedule();
    ready(s, fake(4), fake(4));
    expect(() => s.add(fake(4))).toThrow(expect.objectContaining({ code: 'OVERLOADED' }));
    expect(s.numWaiting).toBe(2);
    expect(running.status).toBe(RequestStatus.Running);
    expect(s.schedule().decode).toEqual([running]);
  });

  it('refuses a request that could never fit the budget, even alone', () => {
    const s = scheduler({ capacity: 100, cross: 20 });
    expect(() => s.add(fake(10, 81))).toThrow(expect.objectContaining({ code: 'PROMPT_TOO_LONG' }));
    expect(() => s.add(fake(10, 80))).not.toThrow();
  });

  it('waits to admit while the budget (with room for one more step) is full; admits when rows finish', () => {
    const s = scheduler({ capacity: 40 }); // rows × longest
    const [a, b] = ready(s, fake(9), fake(9)); // 2 × (9 + 1) = 20 with headroom
    const [c] = ready(s, fake(12)); // 3 × 13 = 39 fits; a fourth would not
    expect(s.schedule().prefill).toEqual([a, b, c]);
    grow(a, b, c);
    const [d] = ready(s, fake(2));
    expect(s.schedule().prefill).toEqual([]); // 4 × 14 > 40
    expect(d.status).toBe(RequestStatus.Waiting);
    s.finish(c);
    grow(a, b);
    const after = s.schedule();
    expect(after.retire).toEqual([c.id]);
    expect(after.prefill).toEqual([d]); // 3 × 12 = 36
  });

  it('keeps FCFS: a ready request that does not fit holds back smaller ones behind it', () => {
    const s = scheduler({ capacity: 60 });
    const [a] = ready(s, fake(20, 40));
    s.schedule();
    grow(a);
    const [big, small] = ready(s, fake(35, 50), fake(2));
    expect(s.schedule().prefill).toEqual([]);
    expect([big.status, small.status]).toEqual([RequestStatus.Waiting, RequestStatus.Waiting]);
  });

  it('preempts the newest rows when growth exhausts the budget, and readmits them first', () => {
    const s = scheduler({ capacity: 30 });
    const [a, b, c] = ready(s, fake(5, 20), fake(5, 20), fake(5, 20));
    s.schedule();
    for (let i = 0; i < 4; i++) {
      grow(a, b, c);
      expect(s.schedule().preempted).toEqual([]);
    } // 3 × 9 = 27; after the next growth 3 × 10 = 30 still fits, then 3 × 11 > 30
    grow(a, b, c);
    expect(s.schedule().preempted).toEqual([]);
    grow(a, b, c);
    const out = s.schedule();
    expect(out.preempted).toEqual([c]);
    expect(out.retire).toEqual([c.id]);
    expect(out.decode).toEqual([a, b]);
    expect(out.prefill).toEqual([]); // nothing joins on a step that preempted
    expect(c.status).toBe(RequestStatus.Preempted);
    expect(s.numWaiting).toBe(1);
    s.finish(a);
    grow(b);
    const back = s.schedule();
    expect(back.prefill).toEqual([c]); // recomputed from its prompt + generated tokens
    expect(back.decode).toEqual([b]);
  });

  it('never preempts the last running row', () => {
    const s = scheduler({ capacity: 20 });
    const [a] = ready(s, fake(5, 20));
    s.schedule();
    a.numTokens = 25; // beyond the budget (cannot happen after add's check, but must not livelock)
    expect(s.schedule()).toMatchObject({ preempted: [], decode: [a] });
  });

  it('limits the tokens prefilled in one step, but always admits at least one', () => {
    const s = scheduler({ maxPrefillTokens: 10 });
    const [a, b, c] = ready(s, fake(12), fake(4), fake(4));
    expect(s.schedule().prefill).toEqual([a]);
    expect(s.schedule().prefill).toEqual([b, c]);
  });

  it('an aborted request leaves no trace: out of line, out of the batch, out of the budget', () => {
    const s = scheduler();
    const [a, b] = ready(s, fake(4), fake(8));
    const [waiting] = ready(s, fake(4));
    s.schedule();
    s.abort(waiting);
    expect(s.numWaiting).toBe(0);
    grow(a, b);
    expect(s.abort(b)).toBe(RequestStatus.Running);
    expect(b.status).toBe(RequestStatus.Cancelled);
    expect(s.kvUsedTokens).toBe(1 * 5);
    const next = s.schedule();
    expect(next.retire).toContain(b.id);
    expect(next.decode).toEqual([a]);
    s.finish(a);
    expect([s.hasRowsToRun, s.hasWork]).toEqual([false, true]); // a row to retire, none to run
    s.schedule();
    expect(s.kvUsedTokens).toBe(0);
    expect(s.numRunning).toBe(0);
    expect(s.hasWork).toBe(false);
  });

  it('validates its options once, with messages that restate the contract', () => {
    const budget = new KvBudget({ capacityTokens: 10, crossTokensPerRow: 0 });
    expect(() => new Scheduler({ maxBatchSize: 0, maxQueued: 1, budget })).toThrow(/maxBatchSize must be an integer >= 1/);
    expect(() => new Scheduler({ maxBatchSize: 1, maxQueued: -1, budget })).toThrow(/maxQueued/);
    expect(() => new Scheduler({ maxBatchSize: 1, maxQueued: 1, budget, maxPrefillTokens: 0 })).toThrow(/maxPrefillTokens/);
  });
});
