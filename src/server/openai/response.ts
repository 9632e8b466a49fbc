// Iris results in the shapes of OpenAI's chat completion objects: the whole completion,
// the stream's chunks, usage and logprobs.
import { finishReasonName, type FinishReason, type FinishReasonName, type GeneratedToken, type GenerationResult, type TokenLogprob, type Usage } from '../../contract/types.ts';

export type OpenAIFinishReason = 'stop' | 'length';

/** The end of sequence and a stop string are both 'stop' to OpenAI clients; Iris's own reason travels in `iris_finish_reason`. */
export function finishReasonOf(reason: FinishReason): OpenAIFinishReason {
  return reason === 'length' ? 'length' : 'stop';
}

export interface OpenAIUsage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
  /** Image tokens are part of prompt_tokens, as OpenAI counts them. */
  readonly prompt_tokens_details: { readonly image_tokens: number };
}

export function usageOf(usage: Usage): OpenAIUsage {
  const prompt = usage.promptTokens + usage.imageTokens;
  return {
    prompt_tokens: prompt,
    completion_tokens: usage.completionTokens,
    total_tokens: prompt + usage.completionTokens,
    prompt_tokens_details: { image_tokens: usage.imageTokens },
  };
}

interface LogprobEntry {
  readonly token: string;
  readonly logprob: number;
  readonly bytes: number[];
}

const entryOf = (t: TokenLogprob | GeneratedToken): LogprobEntry => ({
  token: t.text,
  logprob: t.logprob ?? 0,
  bytes: [...Buffer.from(t.text, 'utf8')],
});

export function logprobsOf(tokens: readonly GeneratedToken[]): { content: Array<LogprobEntry & { top_logprobs: LogprobEntry[] }> } {
  return { content: tokens.map((t) => ({ ...entryOf(t), top_logprobs: (t.top ?? []).map(entryOf) })) };
}

/**
 * Iris's own fields on a choice (and on a stream's finishing chunk) beside `finish_reason`:
 * its finish reason, its signals on how far to trust the text (README: Warnings and
 * confidence), and whether the answer came whole from the result cache or was shared with
 * an identical request in flight (GraphQL's timings.resultCached / resultShared).
 */
export function irisFinishFields(result: GenerationResult) {
  return {
    finish_reason: finishReasonOf(result.finishReason),
    iris_finish_reason: finishReasonName(result.finishReason),
    iris_warnings: result.warnings,
    iris_confidence: result.confidence,
    iris_result_cached: result.timings.resultCached ?? false,
    iris_result_shared: result.timings.resultShared ?? false,
  };
}

export interface CompletionIds {
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly model: string;
}

export function completionOf(ids: CompletionIds, result: GenerationResult, withLogprobs: boolean) {
  return {
    id: ids.id,
    object: 'chat.completion' as const,
    created: ids.created,
    model: result.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant' as const, content: result.text, refusal: null },
        logprobs: withLogprobs ? logprobsOf(result.tokens) : null,
        ...irisFinishFields(result),
      },
    ],
    usage: usageOf(result.usage),
  };
}

interface ChunkChoice {
  readonly delta: { role?: 'assistant'; content?: string };
  readonly logprobs?: ReturnType<typeof logprobsOf> | null;
  readonly finish_reason?: OpenAIFinishReason | null;
  readonly iris_finish_reason?: FinishReasonName;
  readonly iris_warnings?: GenerationResult['warnings'];
  readonly iris_confidence?: GenerationResult['confidence'];
  readonly iris_result_cached?: boolean;
  readonly iris_result_shared?: boolean;
}

/** One `chat.completion.chunk`; with include_usage every chunk has `usage: null` but the last (choices: [], usage set). */
export function chunkOf(ids: CompletionIds, choice: ChunkChoice | null, includeUsage: boolean, usage?: Usage) {
  return {
    id: ids.id,
    object: 'chat.completion.chunk' as const,
    created: ids.created,
    model: ids.model,
    choices: choice ? [{ index: 0, logprobs: null, finish_reason: null, ...choice }] : [],
    ...(includeUsage ? { usage: usage ? usageOf(usage) : null } : {}),
  };
}
