// One request's record inside the engine: its status, its decoder row (sampler,
// detokenizer, stop strings), its image lease, its timings, and the deltas waiting to be
// emitted. Plain state and numbers; the scheduler reads the integers, never a tensor.
import type { EmbeddingLease } from '../../vision/image-loader.ts';
import { RowDecoder, type RowSpec } from './row-decoder.ts';
import type { TextTokenizer } from '../../text/tokenizer.ts';
import { IrisError, type GenerationDelta, type GenerationResult } from '../contract/types.ts';
import type { SpeculationCounts } from './speculator.ts';

/**
 * loading → waiting → running → finished; running → preempted (its KV dropped, back in
 * line, recomputed on readmission) → running; any unfinished state → cancelled.
 */
export const RequestStatus = {
  Loading: 'loading',
  Waiting: 'waiting',
  Running: 'running',
  Preempted: 'preempted',
  Finished: 'finished',
  Cancelled: 'cancelled',
} as const;
export type RequestStatus = (typeof RequestStatus)[keyof typeof RequestStatus];

/** What the scheduler needs to know about a request: integers and a status. */
export interface SchedulerEntry {
  readonly id: number;
  status: RequestStatus;
  /** Tokens its row holds once its next step has run: prompt + tokens generated so far. */
  readonly numTokens: number;
  /** prompt + max new tokens: the most its row can ever hold. */
  readonly maxTokens: number;
}

export interface RequestSettle {
  resolve(result: GenerationResult): void;
  reject(error: Error): void;
}

export interface RequestInit {
  id: number;
  spec: RowSpec;
  tokenizer: TextTokenizer;
  eosIds: readonly number[];
  onDelta?: (delta: GenerationDelta) => void;
  arrivedAt: number;
}

export class EngineRequest implements SchedulerEntry {
  readonly id: number;
  status: RequestStatus = RequestStatus.Loading;
  readonly row: RowDecoder;
  readonly maxTokens: number;
  /** Asked for attention maps with each token. */
  readonly wantsAttention: boolean;
  readonly onDelta: ((delta: GenerationDelta) => void) | undefined;
  lease: EmbeddingLease | undefined;
  settle: RequestSettle | undefined;
  /** Removes the abort listener from the caller's signal. */
  detach: (() => void) | undefined;
  /** Deltas produced by postprocess, handed to the client in emit. */
  readonly outbox: GenerationDelta[] = [];
  readonly arrivedAt: number;
  readyAt = 0;
  firstScheduledAt = 0;
  firstTokenAt = 0;
  prefillMs = 0;
  numPreemptions = 0;

  constructor(init: RequestInit) {
    this.id = init.id;
    this.onDelta = init.onDelta;
    this.arrivedAt = init.arrivedAt;
    this.row = new RowDecoder(init.spec, init.tokenizer, init.eosIds, (d) => this.outbox.push(d));
    this.maxTokens = init.spec.promptIds.length + init.spec.options.maxNewTokens;
    this.wantsAttention = init.spec.options.attention;
  }

  get promptLength(): number {
    return this.row.spec.promptIds.length;
  }

  get numGenerated(): number {
    return this.row.tokens.length;
  }

  get numTokens(): number {
    return this.promptLength + this.numGenerated;
  }

  /** Tokens a (re)admitted row is prefilled with: the prompt, plus what it generated before a preemption. */
  prefillIds(): Int32Array {
    return this.numGenerated === 0 ? this.row.spec.promptIds : this.row.sequence;
  }

  get isDone(): boolean {
    return this.status === RequestStatus.Finished || this.status === RequestStatus.Cancelled;
  }

  /** `speculation`: drafted and accepted counts, when the request speculated. */
  toResult(modelId: string, now: number, speculation: SpeculationCounts | undefined): GenerationResult {
    const lease = this.lease;
    const started = this.firstScheduledAt || now;
    const firstToken = this.firstTokenAt || now;
    return {
      text: this.row.text,
      tokens: this.row.tokens,
      finishReason: this.row.finishReason ?? 'length',
      usage: { promptTokens: this.promptLength, imageTokens: lease?.embedding.numPatches ?? 0, completionTokens: this.numGenerated },
      timings: {
        queueMs: Math.max(0, started - this.readyAt),
        imageEncodeMs: Math.max(0, this.readyAt - this.arrivedAt),
        imageCached: lease?.cached ?? false,
        prefillMs: this.prefillMs,
        decodeMs: Math.max(0, now - firstToken),
        totalMs: now - this.arrivedAt,
        ...(speculation ? { draftedTokens: speculation.drafted, acceptedTokens: speculation.accepted } : {}),
      },
      model: modelId,
      warnings: [...(this.row.spec.warnings ?? [])],
      confidence: this.row.confidence,
    };
  }

  /** Cancelled before any token: an error rather than an empty result. */
  static cancelledError(): IrisError {
    return new IrisError('CANCELLED', 'the request was cancelled before it started decoding');
  }
}
