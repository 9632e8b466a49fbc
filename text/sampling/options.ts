// Validating generation options once, at the edge, into a frozen resolved record.
import { IrisError, SPECULATIVE_MODES, type GenerationOptions, type SpeculativeMode } from '../../src/contract/types.ts';
import { randomSeed } from './rng.ts';

export const DEFAULT_MAX_NEW_TOKENS = 32;
export const MAX_STOP_STRINGS = 8;
export const MAX_STOP_LENGTH = 64;
export const MAX_TOP_LOGPROBS = 20;

export interface ResolvedOptions {
  readonly maxNewTokens: number;
  readonly minNewTokens: number;
  /** False: greedy (first maximum). True: draw from the warped distribution. */
  readonly isSampling: boolean;
  readonly temperature: number;
  readonly topK: number; // 0 = off
  readonly topP: number; // 1 = off
  readonly minP: number; // 0 = off
  readonly repetitionPenalty: number; // 1 = off
  readonly noRepeatNgramSize: number; // 0 = off
  readonly seed: number;
  readonly stop: readonly string[];
  readonly logprobs: boolean;
  readonly topLogprobs: number;
  /** Undefined: the engine's default. */
  readonly speculative: SpeculativeMode | undefined;
  /** Per-token attention maps over the image. */
  readonly attention: boolean;
}

const KNOWN = new Set<keyof GenerationOptions>([
  'maxNewTokens', 'minNewTokens', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty',
  'noRepeatNgramSize', 'seed', 'stop', 'logprobs', 'topLogprobs', 'speculative', 'attention',
]);

/** A value as the caller wrote it: NaN (a CLI number that did not parse) as NaN, not JSON's null. */
function shown(value: unknown): string {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value);
}

function invalid(message: string): never {
  throw new IrisError('INVALID_OPTIONS', message);
}

function int(name: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalid(`${name} must be an integer from ${min} to ${max}, got ${shown(value)}`);
  }
  return value;
}

function real(name: string, value: unknown, min: number, max: number, isMinExclusive = false): number | undefined {
  if (value === undefined || value === null) return undefined;
  const isBelow = typeof value === 'number' && (isMinExclusive ? value <= min : value < min);
  if (typeof value !== 'number' || !Number.isFinite(value) || isBelow || value > max) {
    const range = isMinExclusive ? `greater than ${min} and at most ${max}` : `from ${min} to ${max}`;
    invalid(`${name} must be a number ${range}, got ${shown(value)}`);
  }
  return value;
}

/** off, draft, ngram or medusa; GraphQL's spelling (OFF, DRAFT, NGRAM, MEDUSA) too, so CLI flags and batch lines take either. */
function speculativeMode(value: unknown): SpeculativeMode | undefined {
  if (value === undefined || value === null) return undefined;
  const mode = typeof value === 'string' ? value.toLowerCase() : value;
  if (!SPECULATIVE_MODES.includes(mode as SpeculativeMode)) invalid(`speculative must be one of ${SPECULATIVE_MODES.join(', ')}, got ${JSON.stringify(value)}`);
  return mode as SpeculativeMode;
}

function stopStrings(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const isValid = Array.isArray(value) && value.length <= MAX_STOP_STRINGS &&
    value.every((s) => typeof s === 'string' && s.length > 0 && s.length <= MAX_STOP_LENGTH);
  if (!isValid) invalid(`stop must be a list of at most ${MAX_STOP_STRINGS} non-empty strings of at most ${MAX_STOP_LENGTH} characters`);
  return [...value];
}

/**
 * Sampling is on when temperature > 0, or when temperature is unset and any of
 * topK/topP/minP is given (then at temperature 1). Otherwise decoding is greedy.
 */
export function resolveOptions(options: GenerationOptions | undefined | null): ResolvedOptions {
  const o = (options ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key as keyof GenerationOptions)) invalid(`unknown option '${key}'; known options: ${[...KNOWN].join(', ')}`);
  }
  const maxNewTokens = int('maxNewTokens', o.maxNewTokens, 1, 4096) ?? DEFAULT_MAX_NEW_TOKENS;
  const minNewTokens = int('minNewTokens', o.minNewTokens, 0, maxNewTokens) ?? 0;
  const temperature = real('temperature', o.temperature, 0, 10);
  const topK = int('topK', o.topK, 1, 1_000_000);
  const topP = real('topP', o.topP, 0, 1, true);
  const minP = real('minP', o.minP, 0, 1);
  const hasWarper = topK !== undefined || topP !== undefined || minP !== undefined;
  if (o.logprobs !== undefined && o.logprobs !== null && typeof o.logprobs !== 'boolean') invalid('logprobs must be true or false');
  if (o.attention !== undefined && o.attention !== null && typeof o.attention !== 'boolean') invalid('attention must be true or false');
  const topLogprobs = int('topLogprobs', o.topLogprobs, 0, MAX_TOP_LOGPROBS) ?? 0;
  return Object.freeze({
    maxNewTokens,
    minNewTokens,
    isSampling: temperature === undefined ? hasWarper : temperature > 0,
    temperature: temperature === undefined || temperature === 0 ? 1 : temperature,
    topK: topK ?? 0,
    topP: topP ?? 1,
    minP: minP ?? 0,
    repetitionPenalty: real('repetitionPenalty', o.repetitionPenalty, 0, 10, true) ?? 1,
    noRepeatNgramSize: int('noRepeatNgramSize', o.noRepeatNgramSize, 0, 64) ?? 0,
    seed: int('seed', o.seed, 0, 2 ** 32 - 1) ?? randomSeed(),
    stop: Object.freeze(stopStrings(o.stop)),
    logprobs: o.logprobs === true || topLogprobs > 0,
    topLogprobs,
    speculative: speculativeMode(o.speculative),
    attention: o.attention === true,
  });
}
