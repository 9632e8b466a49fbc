// Reading a model folder's JSON files into one frozen, typed description.
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { IrisError } from '../contract/types.ts';
import { parsePreprocessorConfig, type PreprocessorConfig } from '../../vision/preprocess.ts';
import { adapterFor, positionLimit, type DecoderAdapter } from '../../fusion/adapters.ts';
import { parseTaskTemplates, type TaskTemplates } from '../../fusion/prompts.ts';
import { checkAggregation, DEFAULT_AGGREGATION } from '../../fusion/attention.ts';

export interface SpecialIds {
  decoderStart: number;
  eos: readonly number[];
  pad: number;
}

/**
 * How the image reaches the decoder: cross-attention to the patch embeddings (a vision
 * encoder-decoder), or image tokens placed in the decoder's own sequence (joint embedding,
 * the LLaVA layout: `numTokens` copies of `tokenId` stand for the projected features).
 */
export type ModelFamily =
  | { readonly kind: 'cross-attention' }
  | { readonly kind: 'joint'; readonly imageTokenId: number; readonly numImageTokens: number };

export interface ModelFolder {
  dir: string;
  family: ModelFamily;
  /** Folder name, reported as the result's `model`. */
  id: string;
  decoderType: string;
  adapter: DecoderAdapter | undefined;
  /** Longest decoder sequence (prompt + generated); undefined if the config does not say. */
  maxPositions: number | undefined;
  ids: SpecialIds;
  /** Never generated (generation_config.json suppress_tokens, e.g. the image token). */
  suppressIds: readonly number[];
  templates: TaskTemplates;
  preprocessor: PreprocessorConfig;
  /** How attention maps combine the decoder's layers: `attention.json`'s choice (the pointing game's), else the default. */
  attentionAggregation: string;
}

type Json = Record<string, unknown>;

async function readJson(path: string, isRequired: boolean): Promise<Json> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Json;
  } catch (err) {
    if (!isRequired && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new IrisError('MODEL_NOT_FOUND', `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function readModelFolder(dir: string): Promise<ModelFolder> {
  const root = resolve(dir);
  const [config, generation, preprocessor, attention] = await Promise.all([
    readJson(join(root, 'config.json'), true),
    readJson(join(root, 'generation_config.json'), false),
    readJson(join(root, 'preprocessor_config.json'), true),
    readJson(join(root, ATTENTION_FILE), false),
  ]);
  const family = familyOf(config, root);
  const decoder = ((family.kind === 'joint' ? config.text_config : config.decoder) ?? {}) as Json;
  const decoderType = typeof decoder.model_type === 'string' ? decoder.model_type : 'unknown';
  const adapter = adapterFor(decoderType);
  const suppress = generation.suppress_tokens;
  return Object.freeze({
    dir: root,
    id: basename(root),
    family,
    suppressIds: Object.freeze(Array.isArray(suppress) ? suppress.filter((t): t is number => Number.isInteger(t)) : []),
    decoderType,
    adapter,
    maxPositions: positionLimit(decoder, adapter),
    ids: specialIds([config, decoder, generation]),
    templates: parseTaskTemplates(config.task_specific_params),
    preprocessor: parsePreprocessorConfig(preprocessor),
    attentionAggregation: aggregationOf(attention, join(root, ATTENTION_FILE)),
  });
}

/** Iris's own file in a model folder: the pointing game's choice of attention map (`iris eval --attention --update-model`). */
export const ATTENTION_FILE = 'attention.json';

function aggregationOf(attention: Json, path: string): string {
  if (attention.aggregation === undefined) return DEFAULT_AGGREGATION;
  try {
    return checkAggregation(String(attention.aggregation));
  } catch (err) {
    throw new IrisError('MODEL_NOT_FOUND', `${path}: ${(err as Error).message}`);
  }
}

/** `model_type: llava` (and the families that share its layout) → joint embedding; anything else → cross-attention. */
function familyOf(config: Json, root: string): ModelFamily {
  if (config.model_type !== 'llava') return { kind: 'cross-attention' };
  const imageTokenId = config.image_token_index ?? config.image_token_id;
  const numImageTokens = config.image_seq_length;
  if (!Number.isInteger(imageTokenId) || !Number.isInteger(numImageTokens) || (numImageTokens as number) < 1) {
    throw new IrisError('MODEL_NOT_FOUND', `${join(root, 'config.json')}: a llava model needs image_token_index and image_seq_length`);
  }
  return { kind: 'joint', imageTokenId: imageTokenId as number, numImageTokens: numImageTokens as number };
}

/** Top level, then decoder, then generation_config.json: later sources win (as in transformers.js). */
function specialIds(sources: Json[]): SpecialIds {
  const pick = (key: string): unknown => sources.reduce<unknown>((found, s) => s[key] ?? found, undefined);
  const start = pick('decoder_start_token_id') ?? pick('bos_token_id');
  const eos = pick('eos_token_id');
  const eosList = Array.isArray(eos) ? eos : [eos];
  if (typeof start !== 'number' || !eosList.every((e) => typeof e === 'number') || eosList.length === 0) {
    throw new IrisError('MODEL_NOT_FOUND', 'config.json: decoder_start_token_id (or bos_token_id) and eos_token_id are required');
  }
  const pad = pick('pad_token_id');
  return Object.freeze({ decoderStart: start, eos: Object.freeze(eosList as number[]), pad: typeof pad === 'number' ? pad : eosList[0] as number });
}
