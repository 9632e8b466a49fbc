// Policy only, on plain records and integers: who waits, who is admitted, who decodes
// this step, who is preempted when the KV budget runs out. The scheduler never sees a
// tensor; the engine turns its output into a runner plan.
//
// Order is first come, first served. A request whose image is still being encoded does
// not hold up the line, but a ready request that does not fit does: smaller requests
// behind it wait too, so a long one is never starved.
import { IrisError } from '../contract/types.ts';
import type { KvBudget } from './kv-budget.ts';
import { RequestStatus, type SchedulerEntry } from './request.ts';

/**
 * What an OVERLOADED client is told to wait. A short decode (32 tokens) takes tens of ms
 * per batch step here, so a full line drains within about a second.
 */
export const OVERLOADED_RETRY_SECONDS = 1;

export interface SchedulerOptions {
  /** Rows decoded together; 1 turns batching off (one request at a time). */
  readonly maxBatchSize: number;
  /** Requests in line (loading, waiting or preempted) before new ones get OVERLOADED. */
  readonly maxQueued: number;
  readonly budget: KvBudget;
  /** Tokens prefilled in one step, so a burst of joins does not stall the running rows for long. */
  readonly maxPrefillTokens?: number;
}

export interface SchedulerOutput<T extends SchedulerEntry> {
  /** Ids whose rows leave the batch before this step runs: finished, cancelled or preempted. */
  readonly retire: readonly number[];
  readonly preempted: readonly T[];
  /** Rows already in the batch, in batch order, each decoding one token this step. */
  readonly decode: readonly T[];
  /** Rows joining this step: prefilled now, appended to the batch after the decode rows. */
  readonly prefill: readonly T[];
  /** Cache slots held once this step has run. */
  readonly numKvTokens: number;
}

export class Scheduler<T extends SchedulerEntry> {
  /** Loading, waiting and preempted requests; preempted ones go back to the front. */
  private readonly waiting: T[] = [];
  /** In batch order: the runner's rows are exactly these, in this order. */
  private readonly running: T[] = [];
  private retired: number[] = [];
  private kvTokens = 0;

  constructor(private readonly options: SchedulerOptions) {
    const { maxBatchSize, maxQueued, maxPrefillTokens } = options;
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new RangeError(`maxBatchSize must be an integer >= 1 (1 = no batching), got ${maxBatchSize}`);
    if (!Number.isInteger(maxQueued) || maxQueued < 0) throw new RangeError(`maxQueued must be an integer >= 0, got ${maxQueued}`);
    if (maxPrefillTokens !== undefined && (!Number.isInteger(maxPrefillTokens) || maxPrefillTokens < 1)) {
      throw new RangeError(`maxPrefillTokens must be an integer >= 1, got ${maxPrefillTokens}`);
    }
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  get numRunning(): number {
    return this.running.length;
  }

  /** Cache slots the batch holds after the last scheduled step. */
  get kvUsedTokens(): number {
    return this.kvTokens;
  }

  /** True when a step would do something (run rows or retire them). */
  get hasWork(): boolean {
    return this.hasRowsToRun || this.retired.length > 0;
  }

  /** True while some row decodes or waits, image ready, to be admitted (rows to retire need no decoder time). */
  get hasRowsToRun(): boolean {
    return this.running.length > 0 || this.waiting.some((e) => e.status !== RequestStatus.Loading);
  }

  /** Put a request in line (status loading until its image is ready); OVERLOADED when the line is full. */
  add(entry: T): void {
    if (this.waiting.length >= this.options.maxQueued) {
      const hint = { retryAfterSeconds: OVERLOADED_RETRY_SECONDS };
      throw new IrisError('OVERLOADED', `the model is busy (${this.running.length} running, ${this.waiting.length} waiting); retry in ${hint.retryAfterSeconds} s`, hint);
    }
    if (!this.options.budget.canEverHold(entry.maxTokens)) {
      const need = this.options.budget.rowFootprint(entry.maxTokens);
      throw new IrisError('PROMPT_TOO_LONG', `this request may need ${need} cached tokens; the KV budget holds ${this.options.budget.capacityTokens}`);
    }
    entry.status = RequestStatus.Loading;
    this.waiting.push(entry);
  }

  /** Its image is encoded: it may be admitted from the next step on. */
  markReady(entry: T): void {
    if (entry.status === RequestStatus.Loading) entry.status = RequestStatus.Waiting;
  }

  schedule(): SchedulerOutput<T> {
    const preempted = this.preemptToFit();
    const decode = [...this.running];
    const prefill = preempted.length > 0 ? [] : this.admit();
    for (const entry of prefill) entry.status = RequestStatus.Running;
    this.running.push(...prefill);
    const retire = [...this.retired, ...preempted.map((e) => e.id)];
    this.retired = [];
    this.kvTokens = this.options.budget.footprint(this.running.map((e) => e.numTokens));
    return { retire, preempted, decode, prefill, numKvTokens: this.kvTokens };
  }

  /** A running row ended (EOS, length, stop): its row leaves the batch before the next step. */
  finish(entry: T): void {
    this.removeRunning(entry);
    entry.status = RequestStatus.Finished;
  }

  /** Cancel wherever it is; returns the status it had. */
  abort(entry: T): RequestStatus {
    const previous = entry.status;
    if (previous === RequestStatus.Running) this.removeRunning(entry);
    else {
      const at = this.waiting.indexOf(entry);
      if (at >= 0) this.waiting.splice(at, 1);
    }
    if (previous !== RequestStatus.Finished) entry.status = RequestStatus.Cancelled;
    return previous;
  }

  private removeRunning(entry: T): void {
    const at = this.running.indexOf(entry);
    if (at < 0) return;
    this.running.splice(at, 1);
    this.retired.push(entry.id);
    this.kvTokens = this.options.budget.footprint(this.running.map((e) => e.numTokens));
  }

  /** Drop the newest rows until this step's growth fits; the oldest row always keeps running. */
  private preemptToFit(): T[] {
    const victims: T[] = [];
    while (this.running.length > 1 && !this.options.budget.canHold(this.running.map((e) => e.numTokens))) {
      const victim = this.running.pop()!;
      victim.status = RequestStatus.Preempted;
      victims.push(victim);
    }
    this.waiting.unshift(...[...victims].reverse()); // the earliest admitted goes first
    return victims;
  }

  /** Ready requests in line order while they fit, leaving room for every row's next step. */
  private admit(): T[] {
    const { maxBatchSize, budget, maxPrefillTokens = Infinity } = this.options;
    const tokens = this.running.map((e) => e.numTokens + 1);
    const joined: T[] = [];
    let numPrefillTokens = 0;
    for (const entry of this.waiting) {
      if (entry.status === RequestStatus.Loading) continue;
      if (this.running.length + joined.length >= maxBatchSize) break;
      if (!budget.canHold([...tokens, entry.numTokens + 1])) break;
      if (joined.length > 0 && numPrefillTokens + entry.numTokens > maxPrefillTokens) break;
      joined.push(entry);
      tokens.push(entry.numTokens + 1);
      numPrefillTokens += entry.numTokens;
    }
    for (const entry of joined) this.waiting.splice(this.waiting.indexOf(entry), 1);
    return joined;
  }
}
