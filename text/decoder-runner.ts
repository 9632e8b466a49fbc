// The decoder session behind a typed step: tokens + cache in, last-position logits +
// advanced cache out. No loop and no policy here: the engine's decoder batch decides what
// runs; this only builds feeds and reads outputs.
import * as ort from 'onnxruntime-node';
import { IrisError } from '../src/contract/types.ts';
import type { StepTokens } from './batch-inputs.ts';
import { floatToHalf, tensorFloats } from '../src/contract/float16.ts';
import type { TokenEmbedder } from './embedder.ts';
import { CROSS_PRESENT, KvCache, detectCacheLayout, type CacheLayout, type KV } from './kv-cache.ts';
import { KvPool } from './kv-pool.ts';

/** Image features per row, already gathered for the rows of this step. */
export interface EncoderStates {
  data: Float32Array; // [batch, numPatches, hiddenSize]
  numPatches: number;
  hiddenSize: number;
}

export interface DecoderStepInput {
  tokens: StepTokens;
  encoderStates: EncoderStates;
  cache: KvCache;
  /** Return the logits of every new position (speculative verification), not only the last. */
  isAllPositions?: boolean;
}

export interface DecoderStepOutput {
  logits: Float32Array; // [batch, vocab], last position of each row; [batch, seq, vocab] with isAllPositions
  vocabSize: number;
  cache: KvCache;
  /** Graphs that export attention weights (the "with attentions" variant): per layer, [batch, heads, seq, keys]. */
  attentions?: LayerAttentions;
  /**
   * Graphs with Medusa heads (`medusa_logits`): each head's logits for the tokens after
   * the next, at the same positions as `logits`: [batch, heads, vocab], or
   * [batch, seq, heads, vocab] with isAllPositions.
   */
  headLogits?: Float32Array;
}

export interface LayerAttentions {
  readonly layers: readonly Float32Array[]; // each [batch, heads, seq, keys]
  readonly numHeads: number;
  readonly seqLength: number;
  readonly numKeys: number;
}

/** Medusa heads' output: [batch, seq, heads, vocab], head k predicting the token k+1 after the next. */
export const HEADS_OUTPUT = 'medusa_logits';

/** Cross-attention (encoder-decoder) or self-attention (decoder-only) weights, by output name. */
const ATTENTION_OUTPUT = /^(cross_attentions|decoder_attentions)\.(\d+)$/;

/** One onnxruntime session and what the runner reads off it once. */
interface Graph {
  readonly session: ort.InferenceSession;
  readonly inputNames: ReadonlySet<string>;
  /** Float inputs fp16 exports declare as float16 (hidden states, embeddings); Iris keeps float32 and converts at the feed. */
  readonly halfInputs: ReadonlySet<string>;
  /** With new-column outputs (see DecodeGraph): what a step fetches, and each layer's new-column output names. */
  readonly columns?: { readonly fetch: readonly string[]; readonly layers: readonly { readonly key: string; readonly value: string }[] };
}

/**
 * The decode-only graph as the runner loads it: a file, or its bytes with each
 * self-attention present's new columns exposed as one more output (src/quantize/new-columns.ts:
 * `columns` maps present.* names to them). With them a step fetches only the new columns
 * and appends them to the past itself (KvCache.appendColumns) into reused arrays, instead
 * of receiving the whole cache in a fresh array every step.
 */
export interface DecodeGraph {
  readonly path: string;
  readonly bytes?: Uint8Array;
  readonly columns?: ReadonlyMap<string, string>;
}

function graphOf(session: ort.InferenceSession, layout?: CacheLayout, columns?: ReadonlyMap<string, string>): Graph {
  const graph = {
    session,
    inputNames: new Set(session.inputNames),
    halfInputs: new Set(session.inputMetadata.filter((m) => m.isTensor && m.type === 'float16').map((m) => m.name)),
  };
  if (!layout || !columns) return graph;
  const prefix = (i: number): string => (layout.naming === 'encoder-decoder' ? `present.${i}.decoder` : `present.${i}`);
  const layers = Array.from({ length: layout.numLayers }, (_, i) => ({ key: columns.get(`${prefix(i)}.key`), value: columns.get(`${prefix(i)}.value`) }));
  if (layers.some((l) => !l.key || !l.value || !session.outputNames.includes(l.key) || !session.outputNames.includes(l.value))) return graph;
  const named = new Set([...columns.keys(), ...columns.values()]); // presents not fetched; the columns, once, in layer order
  const fetch = [...session.outputNames.filter((n) => !named.has(n) && !CROSS_PRESENT.test(n)), ...layers.flatMap((l) => [l.key!, l.value!])];
  return { ...graph, columns: { fetch, layers: layers as { key: string; value: string }[] } };
}

export class DecoderRunner {
  /** The attention outputs, in layer order (empty: the plain graph). */
  readonly attentionOutputs: readonly string[];
  /** Medusa heads computed by every call (0: none). */
  readonly numHeads: number;
  private readonly merged: Graph;
  /**
   * The decode-only graph (`decoder_with_past_model.onnx`), when the folder has one: the
   * merged graph's cached branch alone, run for every step whose past is already there
   * (use_cache_branch would be true). No If to dispatch, no cross K/V passed through as
   * outputs; same weights, same logits. Steps without a past run the merged graph.
   */
  private readonly withPast: Graph | undefined;
  /**
   * The arrays of the caches this runner's steps build (appendColumns), and of those built
   * from them. It keeps enough free arrays for a batch's cache, the next one and its
   * joiners' (K and V per layer, four times over); more are left to the collector.
   */
  private readonly pool: KvPool;

  private constructor(
    session: ort.InferenceSession,
    readonly layout: CacheLayout,
    /** For graphs fed inputs_embeds (joint embedding): ids to vectors, image features in place of image tokens. */
    private readonly embedder: TokenEmbedder | undefined,
    withPast: ort.InferenceSession | undefined,
    columns: ReadonlyMap<string, string> | undefined,
  ) {
    this.merged = graphOf(session);
    this.withPast = withPast && graphOf(withPast, layout, columns);
    this.pool = new KvPool(4 * 2 * layout.numLayers);
    this.attentionOutputs = session.outputNames.filter((n) => ATTENTION_OUTPUT.test(n)).sort((a, b) => layerOf(a) - layerOf(b));
    this.numHeads = headCountOf(session);
  }

  /**
   * `withPastPath`: the decode-only graph for steps with a past (see `withPast`); it must
   * have the merged graph's cache layout and outputs, less the encoder presents.
   */
  static async load(path: string, options: ort.InferenceSession.SessionOptions, embedder?: TokenEmbedder, decodeGraph?: string | DecodeGraph): Promise<DecoderRunner> {
    const session = await ort.InferenceSession.create(path, options);
    let withPast: ort.InferenceSession | undefined;
    const decode = typeof decodeGraph === 'string' ? { path: decodeGraph } : decodeGraph;
    try {
      if (session.inputNames.includes('inputs_embeds') && !embedder) throw new IrisError('MODEL_NOT_FOUND', `${path} is fed inputs_embeds, and the folder has no onnx/embed_tokens.onnx`);
      const layout = layoutOf(path, session);
      withPast = !decode ? undefined : decode.bytes ? await ort.InferenceSession.create(decode.bytes, options) : await ort.InferenceSession.create(decode.path, options);
      if (withPast) checkWithPast(decode!.path, withPast, layout, session);
      return new DecoderRunner(session, layout, embedder, withPast, decode?.bytes && decode.columns);
    } catch (err) {
      await Promise.all([session.release(), withPast?.release()]);
      throw err;
    }
  }

  /** True when steps with a past run the decode-only graph. */
  get hasDecodeGraph(): boolean {
    return this.withPast !== undefined;
  }

  /** How often this runner's caches reused a pooled array and how often one was made (KvPool). */
  get kvArrays(): { readonly reused: number; readonly made: number } {
    return this.pool.counts;
  }

  /** True when decode steps fetch only their new K/V columns (see DecodeGraph). */
  get fetchesNewColumnsOnly(): boolean {
    return this.withPast?.columns !== undefined;
  }

  /** After the first step, does the graph still read the image? (A cached cross-attention K/V or image tokens in the cache make it not.) */
  get readsImageEveryStep(): boolean {
    return this.merged.inputNames.has('encoder_hidden_states') && this.layout.naming === 'self-only';
  }

  emptyCache(batchSize: number): KvCache {
    return KvCache.empty(this.layout, batchSize, this.pool);
  }

  async step(input: DecoderStepInput): Promise<DecoderStepOutput> {
    const { tokens, cache } = input;
    const graph = cache.isCached && this.withPast ? this.withPast : this.merged;
    const { columns } = graph;
    const outputs = await graph.session.run(await this.feeds(input, graph), columns ? columns.fetch : cache.outputsToFetch(graph.session.outputNames));
    const logits = input.isAllPositions ? tensorFloats(outputs.logits) : lastPositions(outputs.logits, cache.batchSize, tokens.seqLength);
    const next = columns
      ? cache.appendColumns(columns.layers.map((l): KV => ({ key: outputs[l.key], value: outputs[l.value] })), tokens.seqLength, this.pool)
      : cache.advance(outputs, tokens.seqLength, this.pool);
    const result: DecoderStepOutput = { logits, vocabSize: outputs.logits.dims[2], cache: next };
    const heads = outputs[HEADS_OUTPUT];
    if (heads) result.headLogits = input.isAllPositions ? tensorFloats(heads) : lastPositions(heads, cache.batchSize, tokens.seqLength);
    if (this.attentionOutputs.length > 0) {
      const first = outputs[this.attentionOutputs[0]];
      const [, numHeads, seqLength, numKeys] = first.dims;
      result.attentions = { layers: this.attentionOutputs.map((n) => tensorFloats(outputs[n])), numHeads, seqLength, numKeys };
    }
    return result;
  }

  /** Exactly the inputs the graph declares; a declared input Iris cannot supply is an error. */
  private async feeds(input: DecoderStepInput, graph: Graph): Promise<Record<string, ort.Tensor>> {
    const { inputNames } = graph;
    const { tokens, encoderStates, cache } = input;
    const batch = cache.batchSize;
    const total = tokens.attentionMask.length / batch;
    if (encoderStates.data.length !== batch * encoderStates.numPatches * encoderStates.hiddenSize) {
      throw new Error(`encoder states hold ${encoderStates.data.length} values, not ${batch} rows of [${encoderStates.numPatches}, ${encoderStates.hiddenSize}]`);
    }
    const available: Record<string, ort.Tensor> = {
      ...cache.feeds(),
      input_ids: int64(tokens.inputIds, [batch, tokens.seqLength]),
      attention_mask: int64(tokens.attentionMask, [batch, total]),
      position_ids: int64(tokens.positionIds, [batch, tokens.seqLength]),
    };
    if (inputNames.has('encoder_hidden_states')) available.encoder_hidden_states = hiddenTensor(graph, encoderStates.data, [batch, encoderStates.numPatches, encoderStates.hiddenSize]);
    if (this.embedder) {
      const embeds = await this.embedder.embed(tokens.inputIds, batch, tokens.seqLength, encoderStates);
      available.inputs_embeds = hiddenTensor(graph, embeds, [batch, tokens.seqLength, embeds.length / (batch * tokens.seqLength)], 'inputs_embeds');
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of inputNames) {
      if (!(name in available)) throw new IrisError('MODEL_NOT_FOUND', `decoder declares input '${name}', which Iris does not know how to supply`);
      feeds[name] = available[name];
    }
    return feeds;
  }

  async release(): Promise<void> {
    await Promise.all([this.merged.session.release(), this.withPast?.session.release()]); // the embedder, shared with the attentions variant, is released by its owner
  }
}

/** A float input in the type the graph declares (fp16 exports take float16; Iris computes in float32). */
function hiddenTensor(graph: Graph, data: Float32Array, dims: number[], name = 'encoder_hidden_states'): ort.Tensor {
  return graph.halfInputs.has(name) ? new ort.Tensor('float16', floatToHalf(data), dims) : new ort.Tensor('float32', data, dims);
}

function layoutOf(path: string, session: ort.InferenceSession): CacheLayout {
  const metadata = session.inputMetadata.map((m) => ({ name: m.name, shape: m.isTensor ? m.shape : undefined, type: m.isTensor ? m.type : undefined }));
  try {
    return detectCacheLayout(metadata);
  } catch (err) {
    throw new IrisError('MODEL_NOT_FOUND', `${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The decode-only graph must take the merged graph's cache, with no branch to pick, and give back the same outputs but the encoder presents. */
function checkWithPast(path: string, session: ort.InferenceSession, layout: CacheLayout, merged: ort.InferenceSession): void {
  const own = layoutOf(path, session);
  const mismatch = (Object.keys(layout) as (keyof CacheLayout)[]).find((k) => own[k] !== layout[k]);
  if (mismatch) throw new IrisError('MODEL_NOT_FOUND', `${path}: its cache ${mismatch} is ${own[mismatch]}, the merged decoder's ${layout[mismatch]}`);
  if (session.inputNames.includes('use_cache_branch')) throw new IrisError('MODEL_NOT_FOUND', `${path}: a decode-only graph takes no use_cache_branch`);
  const missing = merged.outputNames.filter((n) => !CROSS_PRESENT.test(n) && !session.outputNames.includes(n));
  if (missing.length > 0) throw new IrisError('MODEL_NOT_FOUND', `${path}: lacks the merged decoder's outputs ${missing.join(', ')}`);
}

function layerOf(name: string): number {
  return Number(ATTENTION_OUTPUT.exec(name)![2]);
}

/**
 * Token ids stay Int32 everywhere else; int64 exists only at the ONNX boundary. Written as
 * two 32-bit words per value (low, then the sign): no BigInt per value (BigInt64Array.from
 * took ~110 µs for a 32-row step's attention mask, this ~3 µs). Little-endian, as every
 * platform onnxruntime-node ships for.
 */
function int64(values: Int32Array, dims: number[]): ort.Tensor {
  const out = new BigInt64Array(values.length);
  const words = new Int32Array(out.buffer);
  for (let i = 0; i < values.length; i++) {
    words[2 * i] = values[i];
    words[2 * i + 1] = values[i] >> 31;
  }
  return new ort.Tensor('int64', out, dims);
}

/** [batch, seq, ...] → [batch, ...] at each row's last position (logits, or the heads' [heads, vocab]). */
function lastPositions(tensor: ort.Tensor, batch: number, seqLength: number): Float32Array {
  const per = tensor.dims.slice(2).reduce((n, d) => n * d, 1);
  const data = tensorFloats(tensor); // fp16 exports return float16 logits; sampling works in float32
  const out = new Float32Array(batch * per);
  for (let row = 0; row < batch; row++) {
    const start = (row * seqLength + seqLength - 1) * per;
    out.set(data.subarray(start, start + per), row * per);
  }
  return out;
}

/** The heads a graph's `medusa_logits` declares ([batch, seq, heads, vocab]); 0 without it. */
function headCountOf(session: ort.InferenceSession): number {
  const meta = session.outputMetadata.find((m) => m.name === HEADS_OUTPUT);
  if (!meta) return 0;
  const heads = meta.isTensor ? meta.shape[2] : undefined;
  if (typeof heads !== 'number' || heads < 1) throw new IrisError('MODEL_NOT_FOUND', `${HEADS_OUTPUT} must be [batch, seq, heads, vocab] with a fixed number of heads, got [${meta.isTensor ? meta.shape.join(', ') : 'not a tensor'}]`);
  return heads;
}
