// A configured model's files: the dtype picks the ONNX file variant (HF naming:
// decoder_model_merged_fp16.onnx, ...), and the folder is checked before anything loads.
import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Dtype, ModelSpec } from '../config/config.ts';
import { IrisError } from '../contract/types.ts';

const SUFFIX: Readonly<Record<Dtype, string>> = { fp32: '', fp16: '_fp16', q8: '_quantized' };

export function onnxFiles(dtype: Dtype): { encoderFile: string; decoderFile: string } {
  return { encoderFile: `encoder_model${SUFFIX[dtype]}.onnx`, decoderFile: `decoder_model_merged${SUFFIX[dtype]}.onnx` };
}

/**
 * The decode-only decoder beside a merged one, same dtype suffix:
 * decoder_model_merged_quantized.onnx → decoder_with_past_model_quantized.onnx (optimum's
 * name for the with-past graph). Folders without it decode with the merged graph.
 */
export function decodeOnlyFileOf(decoderFile: string): string | undefined {
  const suffix = /^decoder_model_merged(.*\.onnx)$/.exec(decoderFile)?.[1];
  return suffix === undefined ? undefined : `decoder_with_past_model${suffix}`;
}

/** Fails with a message that says what to do, rather than a bare ENOENT. */
export async function checkModelFolder(spec: ModelSpec): Promise<void> {
  const dir = resolve(spec.dir);
  try {
    await access(join(dir, 'config.json'));
  } catch {
    throw new IrisError('MODEL_NOT_FOUND', `model "${spec.id}": no model folder at ${dir} (config.json missing)`);
  }
}
