// The contract between the inference core (vision/, text/, fusion/), the engine and the
// API layers (schema/, CLI). Plain data only: no tensors cross this boundary.

export const TASKS = ['caption', 'answer', 'generate'] as const;
export type Task = (typeof TASKS)[number];

/** Speculative decoding: none, drafts from the small draft model, or prompt lookup (n-grams). */
export type SpeculativeMode = 'off' | 'draft' | 'ngram';
export const SPECULATIVE_MODES: readonly SpeculativeMode[] = ['off', 'draft', 'ngram'];

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

export interface GeneratedToken {
  id: number;
  text: string;
  logprob?: number;
  top?: TokenLogprob[];
}

export type FinishReason = 'eos' | 'length' | 'stop' | 'cancelled';

export interface Timings {
  queueMs: number;
  imageEncodeMs: number;
  imageCached: boolean;
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

export interface GenerationResult {
  text: string;
  tokens: GeneratedToken[];
  finishReason: FinishReason;
  usage: Usage;
  timings: Timings;
  model: string;
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

/** What the API layers call: the engine (or a single-request pipeline) implements it. */
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
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'SHUTTING_DOWN';

export class IrisError extends Error {
  constructor(
    readonly code: IrisErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'IrisError';
  }
}
