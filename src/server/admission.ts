// A bounded number of generations running per model, and a bounded line behind them;
// beyond that a request is refused at once with OVERLOADED rather than left to time out.
// The continuous-batching engine (issue 5) will take admission over; until then this
// keeps a burst of requests from piling onto one single-request pipeline.
import { IrisError } from '../contract/types.ts';

export interface AdmissionOptions {
  readonly maxInFlight: number;
  readonly maxQueued: number;
}

export interface AdmissionStats {
  readonly running: number;
  readonly waiting: number;
}

export interface Admission {
  /** Waits for a slot (or throws OVERLOADED / CANCELLED when the signal fires), runs `work`, frees the slot. */
  run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  stats(): AdmissionStats;
}

// A client leaving (or a deadline passing) is an expected outcome, not an internal error;
// the resolver turns it into TIMEOUT when the deadline was the cause.
function cancelled(): IrisError {
  return new IrisError('CANCELLED', 'the request was cancelled while waiting for the model');
}

interface Waiter {
  readonly admit: () => void;
}

export function createAdmission(options: AdmissionOptions): Admission {
  if (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1) {
    throw new Error(`maxInFlight must be an integer ≥ 1, got ${options.maxInFlight}`);
  }
  if (!Number.isInteger(options.maxQueued) || options.maxQueued < 0) {
    throw new Error(`maxQueued must be an integer ≥ 0, got ${options.maxQueued}`);
  }
  let running = 0;
  const waiting: Waiter[] = [];

  const release = (): void => {
    const next = waiting.shift();
    if (next) next.admit();
    else running--;
  };

  const acquire = (signal?: AbortSignal): Promise<void> => {
    if (signal?.aborted) return Promise.reject(cancelled());
    if (running < options.maxInFlight) {
      running++;
      return Promise.resolve();
    }
    if (waiting.length >= options.maxQueued) {
      return Promise.reject(new IrisError('OVERLOADED', `the model is busy (${running} running, ${waiting.length} waiting); retry later`));
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        waiting.splice(waiting.indexOf(waiter), 1);
        reject(cancelled());
      };
      // The slot passes straight from the releasing request to this one (running stays).
      const waiter: Waiter = {
        admit: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  };

  return {
    async run(work, signal) {
      await acquire(signal);
      try {
        return await work();
      } finally {
        release();
      }
    },
    stats: () => ({ running, waiting: waiting.length }),
  };
}
