// One token from one row's logits, built from the request's resolved options. The order is
// HF's: penalties and bans (which can change the argmax) first, then the warpers
// (temperature, top-k, top-p, min-p), which greedy decoding skips because they cannot.
import type { TokenLogprob } from '../../src/contract/types.ts';
import type { ResolvedOptions } from './options.ts';
import {
  argmax, keepMinP, keepTopK, keepTopP, logprobOf, logSoftmax, penalizeRepetition, repeatedNgramIds,
  scaleByTemperature, softmax, suppressIds, argsortDescending,
} from './processors.ts';
import { createRng, type Rng } from './rng.ts';
import { drawFrom, judgeDraft, type DraftToken } from './speculative.ts';

export interface SampledToken {
  id: number;
  /**
   * log P(id) under the model's unprocessed distribution (before penalties, bans and
   * warpers). Always computed (one pass over the logits): results' confidence is built
   * from it whether or not the request asked for logprobs.
   */
  logprob: number;
  /** The topLogprobs most likely tokens, when they were asked for. */
  top?: Omit<TokenLogprob, 'text'>[];
}

export interface SamplerContext {
  /** Prompt ids followed by the ids generated so far. */
  history: ArrayLike<number>;
  numGenerated: number;
}

export interface VerifiedToken extends SampledToken {
  /** True when the kept token is the drafted one. */
  isAccepted: boolean;
}

export interface Sampler {
  next(logits: Float32Array, context: SamplerContext): SampledToken;
  /** A drafter's token at this position (greedy: its argmax) and, when sampling, the distribution it came from. */
  propose(draftLogits: Float32Array, context: SamplerContext): DraftToken;
  /** The token this position keeps given a drafted one: the draft, or the acceptance rule's correction. */
  verify(logits: Float32Array, context: SamplerContext, draft: DraftToken): VerifiedToken;
}

export function createSampler(options: ResolvedOptions, eosIds: readonly number[]): Sampler {
  const rng = createRng(options.seed);
  return {
    next(logits, context) {
      const processed = applyProcessors(logits, context, options, eosIds);
      const id = options.isSampling ? drawToken(applyWarpers(processed, options), rng) : argmax(processed);
      return withLogprobs(logits, id, options.topLogprobs);
    },
    propose(draftLogits, context) {
      const processed = applyProcessors(draftLogits, context, options, eosIds);
      if (!options.isSampling) return { id: argmax(processed) };
      const q = softmax(applyWarpers(processed, options));
      return { id: drawFrom(q, rng), q };
    },
    verify(logits, context, draft) {
      const processed = applyProcessors(logits, context, options, eosIds);
      const verdict = options.isSampling ? judgeDraft(softmax(applyWarpers(processed, options)), draft, rng) : greedyVerdict(processed, draft);
      return { ...withLogprobs(logits, verdict.id, options.topLogprobs), isAccepted: verdict.isAccepted };
    },
  };
}

function greedyVerdict(processed: Float32Array, draft: DraftToken): { id: number; isAccepted: boolean } {
  const id = argmax(processed);
  return { id, isAccepted: id === draft.id };
}

export function applyProcessors(logits: Float32Array, context: SamplerContext, options: ResolvedOptions, eosIds: readonly number[]): Float32Array {
  let out = logits;
  if (options.repetitionPenalty !== 1) out = penalizeRepetition(out, context.history, options.repetitionPenalty);
  if (options.noRepeatNgramSize > 0) out = suppressIds(out, repeatedNgramIds(context.history, options.noRepeatNgramSize));
  if (context.numGenerated < options.minNewTokens) out = suppressIds(out, eosIds);
  return out;
}

export function applyWarpers(logits: Float32Array, options: ResolvedOptions): Float32Array {
  let out = scaleByTemperature(logits, options.temperature);
  if (options.topK > 0) out = keepTopK(out, options.topK);
  if (options.topP < 1) out = keepTopP(out, options.topP);
  if (options.minP > 0) out = keepMinP(out, options.minP);
  return out;
}

/** Inverse-CDF draw; falls back to the argmax if every token was masked out. */
export function drawToken(logits: Float32Array, rng: Rng): number {
  const probs = softmax(logits);
  if (!probs.every(Number.isFinite)) return argmax(logits);
  let u = rng();
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i];
    if (u < 0) return i;
  }
  return argmax(probs); // u landed in float rounding slack past the last bucket
}

function withLogprobs(logits: Float32Array, id: number, topN: number): SampledToken {
  if (topN === 0) return { id, logprob: logprobOf(logits, id) };
  const logp = logSoftmax(logits);
  const top = argsortDescending(logp).slice(0, topN).map((t) => ({ id: t, logprob: logp[t] }));
  return { id, logprob: logp[id], top };
}
