// In-flight de-duplication of identical deterministic requests: those that arrive while
// one with the same result-cache key is being answered (looked up, or run on the model)
// share that one answer instead of each running the model.
//
//  - Each caller gets its own stream: the pieces produced before it joined, at once, then
//    each new one as it comes; then the result (a joiner's with timings.resultShared and
//    its own totalMs).
//  - A caller that goes away (its signal aborts, or its consumer throws) leaves alone: it
//    gets CANCELLED, or its partial text with finishReason 'cancelled', as from the
//    engine. The shared run is cancelled only when no caller is left.
//  - An error of the shared run reaches every caller.
import type { GenerateHooks, GeneratedToken, GenerationDelta, GenerationResult } from '../contract/types.ts';
import { EngineRequest } from './request.ts';

export interface SingleFlightStats {
  /** Requests that joined an identical one in flight (nothing looked up or run for them). */
  readonly hits: number;
  /** Requests that found none and started one. */
  readonly misses: number;
}

interface Caller {
  deliver(delta: GenerationDelta): void;
  resolve(result: GenerationResult): void;
  reject(error: unknown): void;
}

interface Flight {
  readonly deltas: GenerationDelta[];
  readonly callers: Set<Caller>;
  readonly controller: AbortController;
}

/** What a caller that left had received: its text and tokens, cut short. */
function partialResult(received: readonly GenerationDelta[], modelId: string, totalMs: number): GenerationResult {
  const tokens: GeneratedToken[] = [];
  for (const { token } of received) if (tokens.at(-1) !== token) tokens.push(token);
  return {
    text: received.map((d) => d.text).join(''),
    tokens,
    finishReason: 'cancelled',
    // The run it shared goes on for the others: its prompt figures are not this caller's to report.
    usage: { promptTokens: 0, imageTokens: 0, completionTokens: tokens.length },
    timings: { queueMs: 0, imageEncodeMs: 0, imageCached: null, prefillMs: 0, decodeMs: 0, totalMs, resultShared: true },
    model: modelId,
    warnings: [],
    confidence: { tokens: tokens.length, meanLogprob: null, minLogprob: null, perplexity: null },
  };
}

export class SingleFlight {
  private readonly flights = new Map<string, Flight>();
  private hits = 0;
  private misses = 0;

  constructor(private readonly modelId: string) {}

  /**
   * Answers `hooks`' caller from the flight running under `key`, or starts one with
   * `start` (given the flight's own hooks: its signal fires when every caller has left).
   */
  run(key: string, hooks: GenerateHooks, arrivedAt: number, start: (shared: GenerateHooks) => Promise<GenerationResult>): Promise<GenerationResult> {
    if (hooks.signal?.aborted) return Promise.reject(EngineRequest.cancelledError());
    const running = this.flights.get(key);
    if (running) {
      this.hits++;
      return this.join(key, running, hooks, arrivedAt, true);
    }
    this.misses++;
    const flight: Flight = { deltas: [], callers: new Set(), controller: new AbortController() };
    this.flights.set(key, flight);
    const answer = this.join(key, flight, hooks, arrivedAt, false);
    const onDelta = (delta: GenerationDelta): void => {
      flight.deltas.push(delta);
      for (const caller of [...flight.callers]) caller.deliver(delta);
    };
    start({ signal: flight.controller.signal, onDelta }).then(
      (result) => {
        this.end(key, flight);
        for (const caller of [...flight.callers]) caller.resolve(result);
      },
      (error: unknown) => {
        this.end(key, flight);
        for (const caller of [...flight.callers]) caller.reject(error);
      },
    );
    return answer;
  }

  stats(): SingleFlightStats {
    return { hits: this.hits, misses: this.misses };
  }

  /** A flight no one can join any more: finished, or cancelled because every caller left. */
  private end(key: string, flight: Flight): void {
    if (this.flights.get(key) === flight) this.flights.delete(key);
  }

  private join(key: string, flight: Flight, hooks: GenerateHooks, arrivedAt: number, isJoiner: boolean): Promise<GenerationResult> {
    return new Promise<GenerationResult>((resolve, reject) => {
      const received: GenerationDelta[] = [];
      let detach = (): void => undefined;
      const leave = (): void => {
        if (!flight.callers.delete(caller)) return;
        detach();
        if (flight.callers.size === 0) {
          this.end(key, flight);
          flight.controller.abort(new Error('every caller of this run went away'));
        }
        if (received.length === 0) reject(EngineRequest.cancelledError());
        else resolve(partialResult(received, this.modelId, performance.now() - arrivedAt));
      };
      const caller: Caller = {
        deliver(delta) {
          received.push(delta);
          try {
            hooks.onDelta?.(delta);
          } catch {
            leave(); // a consumer that throws is gone
          }
        },
        resolve(result) {
          detach();
          resolve(isJoiner ? { ...result, timings: { ...result.timings, totalMs: performance.now() - arrivedAt, resultShared: true } } : result);
        },
        reject(error) {
          detach();
          reject(error);
        },
      };
      flight.callers.add(caller);
      for (const delta of flight.deltas) {
        if (!flight.callers.has(caller)) return;
        caller.deliver(delta);
      }
      const { signal } = hooks;
      if (signal && flight.callers.has(caller)) {
        signal.addEventListener('abort', leave, { once: true });
        detach = () => signal.removeEventListener('abort', leave);
      }
    });
  }
}
