// What differs between decoder families, in one table keyed by config.decoder.model_type.
// Generic code asks the adapter; it never branches on model names itself.
import type { CacheNaming } from '../text/kv-cache.ts';

export interface DecoderAdapter {
  /** The cache naming its HF/optimum ONNX export uses (checked against the graph). */
  cacheNaming: CacheNaming;
  /** Config keys holding the longest sequence the position embeddings cover, in priority order. */
  positionLimitKeys: readonly string[];
}

const GPT2: DecoderAdapter = { cacheNaming: 'self-only', positionLimitKeys: ['n_positions', 'n_ctx', 'max_position_embeddings'] };
const ENC_DEC: DecoderAdapter = { cacheNaming: 'encoder-decoder', positionLimitKeys: ['max_position_embeddings', 'max_target_positions'] };

const ADAPTERS: Readonly<Record<string, DecoderAdapter>> = Object.freeze({
  gpt2: GPT2,
  gpt_neo: { ...GPT2, positionLimitKeys: ['max_position_embeddings'] },
  // LLaVA-family text decoders (joint embedding: image tokens in the decoder's own sequence)
  llama: { ...GPT2, positionLimitKeys: ['max_position_embeddings'] },
  mistral: { ...GPT2, positionLimitKeys: ['max_position_embeddings'] },
  qwen2: { ...GPT2, positionLimitKeys: ['max_position_embeddings'] },
  trocr: ENC_DEC,
  bart: ENC_DEC,
  mbart: ENC_DEC,
  marian: ENC_DEC,
  whisper: { ...ENC_DEC, positionLimitKeys: ['max_target_positions', 'max_position_embeddings'] },
  bert: ENC_DEC,
  roberta: ENC_DEC,
});

/** Unknown families still run (the graph decides the naming); only the limit lookup is generic. */
const FALLBACK_KEYS = ['max_position_embeddings', 'n_positions', 'n_ctx', 'max_target_positions'];

export function adapterFor(modelType: string): DecoderAdapter | undefined {
  return ADAPTERS[modelType];
}

export function positionLimit(decoderConfig: Record<string, unknown>, adapter: DecoderAdapter | undefined): number | undefined {
  for (const key of adapter?.positionLimitKeys ?? FALLBACK_KEYS) {
    const value = decoderConfig[key];
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  }
  return undefined;
}
