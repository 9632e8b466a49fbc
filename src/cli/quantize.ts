// `iris quantize [<model-dir>] [--dtype q8|fp16|all]` (it also adds the decode-only
// decoder graph a folder lacks), and the --dtype of the running
// commands (which ONNX variant files they load).
import { relative, resolve } from 'node:path';
import type { CliSettings } from './args.ts';
import { DTYPES, type Dtype } from '../config/config.ts';
import { DEFAULT_MODEL_DIR } from '../model/load.ts';
import { addDecodeGraphs, quantizeFolder, type QuantizeDtype, type VariantReport } from '../quantize/quantize-folder.ts';
import { IrisError } from '../contract/types.ts';

/** --dtype for caption/ask/generate/batch/eval: which variant files to load. */
export function runDtype(settings: CliSettings): Dtype {
  const dtype = settings.dtype ?? 'fp32';
  if (!(DTYPES as readonly string[]).includes(dtype)) {
    throw new IrisError('INVALID_OPTIONS', `--dtype must be one of ${DTYPES.join(', ')}, got "${dtype}"`);
  }
  return dtype as Dtype;
}

function quantizeDtypes(raw: string | undefined): QuantizeDtype[] {
  switch (raw ?? 'all') {
    case 'all':
      return ['q8', 'fp16'];
    case 'q8':
    case 'fp16':
      return [raw as QuantizeDtype];
    default:
      throw new IrisError('INVALID_OPTIONS', `iris quantize --dtype must be q8, fp16 or all, got "${raw}"`);
  }
}

function formatReport(reports: readonly VariantReport[]): string {
  const mb = (n: number) => (n / 1e6).toFixed(2);
  const lines = reports.map((r) => {
    const changes = Object.entries(r.changes).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ');
    return `${relative(process.cwd(), r.output)}\t${mb(r.sourceBytes)} MB → ${mb(r.outputBytes)} MB (${(r.sourceBytes / r.outputBytes).toFixed(2)}× smaller)\t${changes}`;
  });
  const totals = (['q8', 'fp16'] as const).flatMap((dtype) => {
    const of = reports.filter((r) => r.dtype === dtype);
    if (of.length === 0) return [];
    const [src, out] = [of.reduce((n, r) => n + r.sourceBytes, 0), of.reduce((n, r) => n + r.outputBytes, 0)];
    return [`${dtype}: ${mb(src)} MB → ${mb(out)} MB in all (${(src / out).toFixed(2)}× smaller)`];
  });
  return [...lines, ...totals].join('\n');
}

export async function runQuantize(settings: CliSettings): Promise<number> {
  if (settings.positionals.length > 1) throw new IrisError('INVALID_OPTIONS', 'quantize takes one model folder');
  const dir = resolve(settings.positionals[0] ?? settings.modelDir ?? DEFAULT_MODEL_DIR);
  let reports: VariantReport[];
  let derived: string[];
  try {
    derived = await addDecodeGraphs(dir);
    reports = await quantizeFolder(dir, { dtypes: quantizeDtypes(settings.dtype) });
  } catch (err) {
    if (err instanceof IrisError) throw err;
    throw new IrisError('MODEL_NOT_FOUND', err instanceof Error ? err.message : String(err));
  }
  if (settings.isJson) {
    for (const path of derived) console.log(JSON.stringify({ decodeGraph: path }));
    for (const r of reports) console.log(JSON.stringify(r));
  } else {
    for (const path of derived) console.log(`${relative(process.cwd(), path)}\tdecode-only graph of decoder_model_merged.onnx`);
    console.log(formatReport(reports));
  }
  return 0;
}
