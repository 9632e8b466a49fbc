// One decoder row's life: sample, detokenize, check stop conditions, stream deltas.
// Plain state and numbers; the decoder batch owns the tensors and sessions.
import { IncrementalDetokenizer } from '../../text/detokenizer.ts';
import type { ResolvedOptions } from '../../text/sampling/options.ts';
import { createSampler, type SampledToken, type Sampler } from '../../text/sampling/sampler.ts';
import type { DraftToken } from '../../text/sampling/speculative.ts';
import { StopStringMatcher } from '../../text/sampling/stop-strings.ts';
import type { TextTokenizer } from '../../text/tokenizer.ts';
import type { Confidence, FinishReason, GeneratedToken, GenerationDelta, GenerationWarning, TokenAttention } from '../contract/types.ts';

export interface RowSpec {
  readonly promptIds: Int32Array;
  /** The text continues these tokens (a continuation's prompt): its first word gets the space that separates it from them. */
  readonly textContext?: Int32Array;
  /** maxNewTokens already capped by the model's position limit. */
  readonly options: ResolvedOptions;
  /** What the request's result reports besides its text (unknown words); none when absent. */
  readonly warnings?: readonly GenerationWarning[];
}

export class RowDecoder {
  readonly tokens: GeneratedToken[] = [];
  finishReason: FinishReason | undefined;
  private readonly history: number[];
  private readonly sampler: Sampler;
  private readonly detokenizer: IncrementalDetokenizer;
  private readonly stops: StopStringMatcher;
  /** Sum and minimum of the generated tokens' log-probabilities (for the confidence summary). */
  private logprobSum = 0;
  private logprobMin = Infinity;

  constructor(
    readonly spec: RowSpec,
    private readonly tokenizer: TextTokenizer,
    private readonly eosIds: readonly number[],
    private readonly onDelta: ((delta: GenerationDelta) => void) | undefined,
    /** Never generated (e.g. a joint model's image token). */
    suppressedIds: readonly number[] = [],
  ) {
    this.history = Array.from(spec.promptIds);
    this.sampler = createSampler(spec.options, eosIds, suppressedIds);
    this.detokenizer = new IncrementalDetokenizer({ decode: (ids) => tokenizer.decode(ids) }, spec.textContext);
    this.stops = new StopStringMatcher(spec.options.stop);
  }

  get isFinished(): boolean {
    return this.finishReason !== undefined;
  }

  get text(): string {
    return this.stops.text;
  }

  /** The whole sequence so far (prompt + generated), for recompute-from-scratch decoding. */
  get sequence(): Int32Array {
    return Int32Array.from(this.history);
  }

  /** An end-of-sequence id: nothing worth drafting follows it. */
  isEos(id: number): boolean {
    return this.eosIds.includes(id);
  }

  /** The confidence summary over the tokens generated so far (null figures before the first). */
  get confidence(): Confidence {
    const n = this.tokens.length;
    if (n === 0) return { tokens: 0, meanLogprob: null, minLogprob: null, perplexity: null };
    const mean = this.logprobSum / n;
    return { tokens: n, meanLogprob: mean, minLogprob: this.logprobMin, perplexity: Math.exp(-mean) };
  }

  get lastId(): number {
    return this.history[this.history.length - 1];
  }

  /** Take this step's logits ([vocab]), and where the model looked if it was asked; returns false once the row has finished. */
  accept(logits: Float32Array, attention?: TokenAttention): boolean {
    return this.push(this.sampler.next(logits, { history: this.history, numGenerated: this.tokens.length }), attention);
  }

  /**
   * Take the target's logits at a drafted position: keep the draft or the acceptance
   * rule's correction. isLive is false once the row has finished.
   */
  acceptDraft(logits: Float32Array, draft: DraftToken): { isLive: boolean; isAccepted: boolean } {
    const verified = this.sampler.verify(logits, { history: this.history, numGenerated: this.tokens.length }, draft);
    return { isLive: this.push(verified), isAccepted: verified.isAccepted };
  }

  /** The drafter's token after this row's sequence plus `drafted` (the tokens it drafted before this one). */
  proposeDraft(draftLogits: Float32Array, drafted: readonly number[]): DraftToken {
    const history = drafted.length === 0 ? this.history : [...this.history, ...drafted];
    return this.sampler.propose(draftLogits, { history, numGenerated: this.tokens.length + drafted.length });
  }

  private push(sampled: SampledToken, attention?: TokenAttention): boolean {
    if (this.eosIds.includes(sampled.id)) return this.finish('eos');
    this.history.push(sampled.id);
    const token: GeneratedToken = { id: sampled.id, text: this.tokenizer.tokenText(sampled.id) };
    if (attention) token.attention = attention;
    if (this.spec.options.logprobs) token.logprob = sampled.logprob;
    this.logprobSum += sampled.logprob;
    this.logprobMin = Math.min(this.logprobMin, sampled.logprob);
    if (sampled.top) token.top = sampled.top.map((t) => ({ ...t, text: this.tokenizer.tokenText(t.id) }));
    this.tokens.push(token);
    const check = this.stops.push(this.detokenizer.push(sampled.id));
    this.onDelta?.({ text: check.emit, token });
    if (check.isStopped) {
      this.finishReason = 'stop';
      return false;
    }
    if (this.tokens.length >= this.spec.options.maxNewTokens) return this.finish('length');
    return true;
  }

  /** End the row; text still held back by the detokenizer or the stop matcher is released. */
  finish(reason: FinishReason): false {
    if (this.isFinished) return false;
    const check = this.stops.push(this.detokenizer.flush());
    this.finishReason = check.isStopped ? 'stop' : reason;
    const rest = check.emit + (check.isStopped ? '' : this.stops.flush());
    const last = this.tokens[this.tokens.length - 1];
    if (rest && last) this.onDelta?.({ text: rest, token: last });
    return false;
  }
}
