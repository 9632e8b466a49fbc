// Loading a model folder into the pieces that generate from it: tokenizer, vision encoder and decoder runner.
import { access, readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as ort from 'onnxruntime-node';
import { decodeOnlyFileOf } from './files.ts';
import { readModelFolder, type ModelFolder } from './folder.ts';
import { DecoderRunner, type DecodeGraph } from '../../text/decoder-runner.ts';
import { TokenEmbedder } from '../../text/embedder.ts';
import { TextTokenizer } from '../../text/tokenizer.ts';
import { VisionEncoder } from '../../vision/encoder.ts';
import { IrisError } from '../contract/types.ts';
import { exposeNewColumns } from '../quantize/new-columns.ts';
import { decodeModel, encodeModel, isExternalData } from '../quantize/onnx-proto.ts';

/** The shipped model, resolved relative to the package (not the working directory). */
export const DEFAULT_MODEL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../assets/models/shapes-base');

export interface ModelLoadOptions {
  /** onnxruntime intra-op threads; default: onnxruntime's choice (all cores). */
  threads?: number;
  /** Decoder file inside onnx/, e.g. 'decoder_model_merged_quantized.onnx'. */
  decoderFile?: string;
  encoderFile?: string;
  /**
   * Called when the folder's `medusa/` is present but fails to load: the model then loads
   * without heads (speculative 'medusa' off for it). Without this option such a failure
   * fails the load.
   */
  onHeadsFailure?: (error: Error) => void;
}

/** Where a folder keeps its Medusa heads: the decoder again, with `medusa_logits` as one more output. */
export const HEADS_FOLDER = 'medusa';

export interface IrisModel {
  folder: ModelFolder;
  tokenizer: TextTokenizer;
  encoder: VisionEncoder;
  runner: DecoderRunner;
  /**
   * The same decoder exporting its attention weights (`decoder_with_attentions_model_merged*.onnx`
   * beside the decoder), run only for steps where a request asked for attention maps.
   */
  attentionRunner: DecoderRunner | undefined;
  /**
   * The same decoder with Medusa heads (`medusa/onnx/decoder_model_merged.onnx`, and its
   * decode-only graph), run only for steps where some request speculates with them. Only
   * beside the float32 decoder: the heads are trained on its hidden states.
   */
  headsRunner: DecoderRunner | undefined;
  /** Special-token strings user text may not contain (see fusion/prompts.ts). */
  specialTokens: readonly string[];
  release(): Promise<void>;
}

export async function loadIrisModel(dir: string = DEFAULT_MODEL_DIR, options: ModelLoadOptions = {}): Promise<IrisModel> {
  const folder = await readModelFolder(dir);
  const encoderPath = encoderPathOf(folder, options);
  const embedPath = folder.family.kind === 'joint' ? join(folder.dir, 'onnx', familyFile(folder, options.decoderFile ?? 'decoder_model_merged.onnx', 'embed_tokens')) : undefined;
  const decoderPath = join(folder.dir, 'onnx', options.decoderFile ?? 'decoder_model_merged.onnx');
  await Promise.all([encoderPath, decoderPath, ...(embedPath ? [embedPath] : [])].map(mustExist));
  const session = sessionOptionsOf(options);
  const embedder = embedPath && folder.family.kind === 'joint' ? await TokenEmbedder.load(embedPath, folder.family.imageTokenId, session) : undefined;
  const attentionPath = join(dirname(decoderPath), basename(decoderPath).replace(/^decoder_model_merged/, 'decoder_with_attentions_model_merged'));
  const hasAttention = attentionPath !== decoderPath && (await exists(attentionPath));
  const headsPath = join(folder.dir, HEADS_FOLDER, 'onnx', 'decoder_model_merged.onnx');
  const hasHeads = basename(decoderPath) === 'decoder_model_merged.onnx' && (await exists(headsPath));
  const [tokenizer, encoder, runner, attentionRunner, loadedHeads] = await Promise.all([
    TextTokenizer.load(folder.dir),
    VisionEncoder.load(encoderPath, folder.preprocessor, session),
    loadDecoderRunner(decoderPath, session, embedder),
    hasAttention ? DecoderRunner.load(attentionPath, session, embedder) : undefined,
    hasHeads ? loadHeadsRunner(headsPath, session, embedder, options.onHeadsFailure) : undefined,
  ]);
  let headsRunner = loadedHeads;
  const release = async (): Promise<void> => {
    await Promise.all([encoder.release(), runner.release(), attentionRunner?.release(), headsRunner?.release(), embedder?.release()]);
  };
  try {
    if (folder.adapter && folder.adapter.cacheNaming !== runner.layout.naming) {
      throw new IrisError('MODEL_NOT_FOUND', `${decoderPath}: a '${folder.decoderType}' decoder should use ${folder.adapter.cacheNaming} cache names, the graph uses ${runner.layout.naming}`);
    }
    if (headsRunner) headsRunner = await checkedHeads(headsPath, headsRunner, runner, options.onHeadsFailure);
  } catch (error) {
    await release();
    throw error;
  }
  return { folder, tokenizer, encoder, runner, attentionRunner, headsRunner, specialTokens: specialTokenStrings(tokenizer), release };
}

/** The heads' decoder, or undefined (reported through onFailure) when it fails to load and the caller can do without. */
async function loadHeadsRunner(path: string, session: ort.InferenceSession.SessionOptions, embedder: TokenEmbedder | undefined, onFailure: ((error: Error) => void) | undefined): Promise<DecoderRunner | undefined> {
  try {
    const runner = await loadDecoderRunner(path, session, embedder);
    if (runner.numHeads === 0) {
      await runner.release();
      throw new IrisError('MODEL_NOT_FOUND', `${path} has no medusa_logits output`);
    }
    return runner;
  } catch (error) {
    if (!onFailure) throw error;
    onFailure(error instanceof Error ? error : new Error(String(error)));
    return undefined;
  }
}

/** The heads' decoder must take and give the plain decoder's cache, so a batch can switch between them step by step. */
async function checkedHeads(path: string, heads: DecoderRunner, plain: DecoderRunner, onFailure: ((error: Error) => void) | undefined): Promise<DecoderRunner | undefined> {
  const mismatch = (Object.keys(plain.layout) as (keyof typeof plain.layout)[]).find((k) => heads.layout[k] !== plain.layout[k]);
  const problem = mismatch
    ? `its cache ${mismatch} is ${heads.layout[mismatch]}, the decoder's ${plain.layout[mismatch]}`
    : heads.hasDecodeGraph !== plain.hasDecodeGraph ? `it ${heads.hasDecodeGraph ? 'has' : 'lacks'} a decode-only graph, unlike the decoder` : undefined;
  if (!problem) return heads;
  const error = new IrisError('MODEL_NOT_FOUND', `${path}: ${problem}`);
  if (!onFailure) throw error;
  await heads.release();
  onFailure(error);
  return undefined;
}

/**
 * A merged decoder and, when the folder has it beside the merged file, its decode-only
 * graph (`decodeOnlyFileOf`), which the runner takes for every step with a past. Without
 * it (an optimum or transformers.js folder as exported) every step runs the merged graph.
 */
export async function loadDecoderRunner(decoderPath: string, session: ort.InferenceSession.SessionOptions, embedder?: TokenEmbedder): Promise<DecoderRunner> {
  const withPastFile = decodeOnlyFileOf(basename(decoderPath));
  const withPastPath = withPastFile && join(dirname(decoderPath), withPastFile);
  return DecoderRunner.load(decoderPath, session, embedder, withPastPath && (await exists(withPastPath)) ? await decodeGraphOf(withPastPath) : undefined);
}

/**
 * The decode-only graph with its steps' new K/V columns as outputs (src/quantize/new-columns.ts),
 * or the file as it is when its presents are not Concat(past, new) or it cannot be read whole
 * (weights in external data files): the runner then fetches the presents themselves.
 */
async function decodeGraphOf(path: string): Promise<DecodeGraph> {
  try {
    const model = decodeModel(new Uint8Array(await readFile(path)));
    if (model.graph.initializers.some(isExternalData)) return { path };
    const exposed = exposeNewColumns(model);
    return exposed ? { path, bytes: encodeModel(exposed.model), columns: exposed.outputs } : { path };
  } catch {
    return { path }; // onnxruntime reports what is wrong with the file when it loads it
  }
}

/** Where the vision encoder's graph is (the engine's image worker loads it again). */
export function encoderPathOf(folder: ModelFolder, options: ModelLoadOptions): string {
  return join(folder.dir, 'onnx', familyFile(folder, options.encoderFile ?? 'encoder_model.onnx', 'vision_encoder'));
}

/**
 * A joint (LLaVA) folder names its files vision_encoder / embed_tokens / decoder_model_merged;
 * the dtype's suffix (encoder_model_quantized.onnx → vision_encoder_quantized.onnx) carries over.
 */
function familyFile(folder: ModelFolder, file: string, jointStem: 'vision_encoder' | 'embed_tokens'): string {
  if (folder.family.kind !== 'joint') return file;
  const suffix = /^(?:encoder_model|decoder_model_merged)(.*)$/.exec(file)?.[1];
  return suffix === undefined ? file : `${jointStem}${suffix}`;
}

export function sessionOptionsOf(options: ModelLoadOptions): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: 'all',
    ...(options.threads ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}),
  };
}

function specialTokenStrings(tokenizer: TextTokenizer): string[] {
  const out: string[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) if (tokenizer.isSpecial(id)) out.push(tokenizer.tokenText(id));
  return out;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

async function mustExist(path: string): Promise<void> {
  try {
    await access(path);
  } catch {
    const isVariant = /_(quantized|fp16)\.onnx$/.test(path);
    throw new IrisError('MODEL_NOT_FOUND', `model file not found: ${path}${isVariant ? ` (make the q8/fp16 variants with: iris quantize ${dirname(dirname(path))})` : ''}`);
  }
}
