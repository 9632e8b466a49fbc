// Reading a model folder's JSON files into one frozen, typed description.
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { IrisError } from '../contract/types.ts';
import { parsePreprocessorConfig, type PreprocessorConfig } from '../../vision/preprocess.ts';
import { adapterFor, positionLimit, type DecoderAdapter } from '../../fusion/adapters.ts';
import { parseTaskTemplates, type TaskTemplates } from '../../fusion/prompts.ts';

export interface SpecialIds {
  decoderStart: number;
  eos: readonly number[];
  pad: number;
}

export interface ModelFolder {
  dir: string;
  /** Folder name, reported as the result's `model`. */
  id: string;
  decoderType: string;
  adapter: DecoderAdapter | undefined;
  /** Longest decoder sequence (prompt + generated); undefined if the config does not say. */
  maxPositions: number | undefined;
  ids: SpecialIds;
  templates: TaskTemplates;
  preprocessor: PreprocessorConfig;
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
  const [config, generation, preprocessor] = await Promise.all([
    readJson(join(root, 'config.json'), true),
    readJson(join(root, 'generation_config.json'), false),
    readJson(join(root, 'preprocessor_config.json'), true),
  ]);
  const decoder = (config.decoder ?? {}) as Json;
  const decoderType = typeof decoder.model_type === 'string' ? decoder.model_type : 'unknown';
  const adapter = adapterFor(decoderType);
  return Object.freeze({
    dir: root,
    id: basename(root),
    decoderType,
    adapter,
    maxPositions: positionLimit(decoder, adapter),
    ids: specialIds([config, decoder, generation]),
    templates: parseTaskTemplates(config.task_specific_params),
    preprocessor: parsePreprocessorConfig(preprocessor),
  });
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
