// The contract between the inference core (vision/, text/, fusion/), the engine and the
// API layers (schema/, CLI). Plain data only: no tensors cross this boundary.

export const TASKS = ['caption', 'answer', 'generate'] as const;
export type Task = (typeof TASKS)[number];

/** Speculative decoding: none, drafts from the small draft model, or prompt lookup (n-grams). */
export type SpeculativeMode = 'off' | 'draft' | 'ngram' | 'medusa';
export const SPECULATIVE_MODES: readonly SpeculativeMode[] = ['off', 'draft', 'ngram', 'medusa'];
/**
 * The server's default for requests that do not choose: a mode, or 'auto': Medusa heads
 * for greedy requests on a model that has them (the output is the same token for token),
 * plain decoding otherwise (a seeded sample stays the same whatever else is running).
 */
export type DefaultSpeculation = SpeculativeMode | 'auto';
export const DEFAULT_SPECULATIONS: readonly DefaultSpeculation[] = ['auto', ...SPECULATIVE_MODES];

/** Every sampling and stopping option; all optional, greedy by default. */
export interface GenerationOptions {
  maxNewTokens?: number;
  minNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  noRepeatNgramSize?: number;
  seed?: number;
  stop?: string[];
  /** Return the log-probability of each chosen token. */
  logprobs?: boolean;
  /** Also return this many top alternatives per position (implies logprobs). */
  topLogprobs?: number;
  /** Speculative decoding for this request (engine only); default: the server's setting. */
  speculative?: SpeculativeMode;
  /** Return, with each token, where in the image the model looked (needs the model's attentions variant). */
  attention?: boolean;
}

export interface GenerationRequest {
  task: Task;
  /** Encoded image bytes (PNG, JPEG, WebP, GIF, AVIF, TIFF). */
  image: Uint8Array;
  question?: string;
  prompt?: string;
  options?: GenerationOptions;
}

export interface TokenLogprob {
  id: number;
  text: string;
  logprob: number;
}

/**
 * Where the decoder looked when it produced a token: its attention over the image
 * patches, a grid over the preprocessed (resized, square) image. Attention weights, not
 * attributions.
 */
export interface TokenAttention {
  rows: number;
  cols: number;
  /** rows × cols, row-major, summing to 1: the default aggregation of `layers`. */
  weights: number[];
  /** How `weights` was made from the layers and heads. */
  aggregation: string;
  /** Per decoder layer, the mean over heads; each sums to 1. */
  layers: number[][];
  /** Share of the attention that went to the image at all; null where the layout attends only to it (cross-attention). */
  imageShare: number | null;
}

export interface GeneratedToken {
  id: number;
  text: string;
  logprob?: number;
  top?: TokenLogprob[];
  attention?: TokenAttention;
}

export type FinishReason = 'eos' | 'length' | 'stop' | 'cancelled';

/**
 * How a finish reason is spelled wherever it leaves the process: the GraphQL enum, the
 * CLI's JSON and the OpenAI routes' iris_finish_reason. One casing, GraphQL's (enum
 * values are upper case there); the lower-case values are internal.
 */
export type FinishReasonName = Uppercase<FinishReason>;
export function finishReasonName(reason: FinishReason): FinishReasonName {
  return reason.toUpperCase() as FinishReasonName;
}

export interface Timings {
  queueMs: number;
  imageEncodeMs: number;
  /** The image's encoding came from the embedding cache; null when unknown (a remote engine encoded it and does not say). */
  imageCached: boolean | null;
  /** Joint models: the image's prefix K/V came from the prefix cache (its prefill was skipped); null when unknown (a remote engine). */
  prefixCached?: boolean | null;
  /** The whole result came from the result cache (a deterministic request seen before): nothing ran, the phases are 0. */
  resultCached?: boolean;
  /** The result was shared with an identical deterministic request already in flight: the model ran (or the cache answered) once for both. */
  resultShared?: boolean;
  prefillMs: number;
  decodeMs: number;
  totalMs: number;
  /** Speculative decoding: tokens drafted and drafts the target accepted (absent when the request did not speculate). */
  draftedTokens?: number;
  acceptedTokens?: number;
}

export interface Usage {
  promptTokens: number;
  imageTokens: number;
  completionTokens: number;
}

/** Something about the request the caller should know; the result is still produced. */
export type WarningCode = 'UNKNOWN_WORDS';

export interface GenerationWarning {
  code: WarningCode;
  message: string;
  /** UNKNOWN_WORDS: the words of the question or prompt missing from the model's vocabulary, as written, once each. */
  words: string[];
}

/**
 * How sure the model was of the tokens it generated: log-probabilities (natural log) of
 * the chosen tokens under the model's own next-token distribution (before repetition
 * penalties, bans, temperature, top-k/p or min-p), over the tokens in `tokens` (the end
 * of sequence is not one of them). Null figures when no token was generated.
 */
export interface Confidence {
  /** Tokens it is computed over (= tokens.length). */
  tokens: number;
  meanLogprob: number | null;
  minLogprob: number | null;
  /** exp(−meanLogprob). */
  perplexity: number | null;
}

export interface GenerationResult {
  text: string;
  tokens: GeneratedToken[];
  finishReason: FinishReason;
  usage: Usage;
  timings: Timings;
  model: string;
  /** Empty when there is nothing to report. */
  warnings: GenerationWarning[];
  confidence: Confidence;
}

/** A piece of text as it is decoded (never half a character). */
export interface GenerationDelta {
  text: string;
  token: GeneratedToken;
}

export interface GenerateHooks {
  onDelta?: (delta: GenerationDelta) => void;
  signal?: AbortSignal;
}

/** What the API layers call: the engine implements it (and the reference decoder tests compare it with). */
export interface Generator {
  readonly modelId: string;
  generate(request: GenerationRequest, hooks?: GenerateHooks): Promise<GenerationResult>;
}

/** Errors with a stable code, surfaced by the API as `extensions.code`. */
export type IrisErrorCode =
  | 'BAD_IMAGE'
  | 'UNSUPPORTED_IMAGE_FORMAT'
  | 'IMAGE_TOO_LARGE'
  | 'IMAGE_FETCH_FAILED'
  | 'URL_NOT_ALLOWED'
  | 'INVALID_OPTIONS'
  | 'PROMPT_TOO_LONG'
  | 'MODEL_NOT_FOUND'
  | 'MODEL_UNAVAILABLE'
  | 'OVERLOADED'
  | 'RATE_LIMITED'
  | 'UNAUTHENTICATED'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'ATTENTION_UNAVAILABLE'
  | 'SHUTTING_DOWN';

export interface IrisErrorDetails {
  /** When retrying makes sense (OVERLOADED, RATE_LIMITED): seconds to wait first. */
  readonly retryAfterSeconds?: number;
}

export class IrisError extends Error {
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly code: IrisErrorCode,
    message: string,
    details: IrisErrorDetails = {},
  ) {
    super(message);
    this.name = 'IrisError';
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}
