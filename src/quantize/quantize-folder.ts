// `iris quantize`: write the q8 (`_quantized.onnx`) and fp16 (`_fp16.onnx`) variants next
// to every base ONNX file of a model folder, transformers.js naming; first, a merged
// decoder without its decode-only graph beside it gets one (`addDecodeGraphs`).
import { access, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compactNames } from './compact-names.ts';
import { DECODE_GRAPH_STEM, decodeOnlyModel } from './decode-graph.ts';
import { convertModelFp16 } from './fp16.ts';
import { decodeModel, encodeModel } from './onnx-proto.ts';
import { DEFAULT_Q8, quantizeModelQ8, type Q8Options } from './q8.ts';

export type QuantizeDtype = 'q8' | 'fp16';
export const QUANTIZE_SUFFIX: Readonly<Record<QuantizeDtype, string>> = { q8: '_quantized', fp16: '_fp16' };

/** Files that already are a variant (transformers.js suffixes) are inputs to nothing. */
const VARIANT = /_(fp16|quantized|int8|uint8|q4|q4f16|bnb4)\.onnx$/;

export interface VariantReport {
  source: string;
  output: string;
  dtype: QuantizeDtype;
  sourceBytes: number;
  outputBytes: number;
  /** What was rewritten (op counts), for the command's summary. */
  changes: Record<string, number>;
}

export interface QuantizeFolderOptions {
  dtypes: readonly QuantizeDtype[];
  q8?: Q8Options;
}

export async function baseOnnxFiles(modelDir: string): Promise<string[]> {
  const dir = join(modelDir, 'onnx');
  const names = await readdir(dir).catch(() => {
    throw new Error(`${dir}: no onnx/ folder (see docs: <model>/onnx/encoder_model.onnx, decoder_model_merged.onnx)`);
  });
  const files = names.filter((n) => n.endsWith('.onnx') && !VARIANT.test(n)).sort();
  if (files.length === 0) throw new Error(`${dir}: no .onnx files to quantize`);
  return files.map((n) => join(dir, n));
}

/**
 * `onnx/decoder_with_past_model.onnx` made from `onnx/decoder_model_merged.onnx` when the
 * folder has the merged file, not the decode-only one, and the merged graph has an
 * If(use_cache_branch) to resolve (an optimum-style export); the paths written.
 */
export async function addDecodeGraphs(modelDir: string): Promise<string[]> {
  const merged = join(modelDir, 'onnx', 'decoder_model_merged.onnx');
  const output = join(modelDir, 'onnx', `${DECODE_GRAPH_STEM}.onnx`);
  const isThere = (path: string): Promise<boolean> => access(path).then(() => true, () => false);
  if (!(await isThere(merged)) || (await isThere(output))) return [];
  const model = decodeOnlyModel(decodeModel(new Uint8Array(await readFile(merged))));
  if (!model) return [];
  await writeFile(output, encodeModel(model));
  return [output];
}

/** The rewritten bytes of one model file; the input bytes are not modified. */
export function convertModelBytes(bytes: Uint8Array, dtype: QuantizeDtype, q8: Q8Options = DEFAULT_Q8): { bytes: Uint8Array; changes: Record<string, number> } {
  const model = decodeModel(bytes);
  const stats = dtype === 'q8' ? quantizeModelQ8(model, q8) : convertModelFp16(model);
  const compacted = compactNames(model);
  return { bytes: encodeModel(model), changes: { ...stats, ...compacted } };
}

export async function quantizeFolder(modelDir: string, options: QuantizeFolderOptions): Promise<VariantReport[]> {
  const reports: VariantReport[] = [];
  for (const source of await baseOnnxFiles(modelDir)) {
    const bytes = new Uint8Array(await readFile(source));
    for (const dtype of options.dtypes) {
      const converted = convertModelBytes(bytes, dtype, options.q8);
      const output = source.replace(/\.onnx$/, `${QUANTIZE_SUFFIX[dtype]}.onnx`);
      await writeFile(output, converted.bytes);
      reports.push({ source, output, dtype, sourceBytes: (await stat(source)).size, outputBytes: converted.bytes.length, changes: converted.changes });
    }
  }
  return reports;
}
