// The decoder session behind a typed step: tokens + cache in, last-position logits +
// advanced cache out. No loop and no policy here: the engine's decoder batch decides what
// runs; this only builds feeds and reads outputs.
import * as ort from 'onnxruntime-node';
import { IrisError } from '../src/contract/types.ts';
import type { StepTokens } from './batch-inputs.ts';
import { floatToHalf, tensorFloats } from '../src/contract/float16.ts';
import type { TokenEmbedder } from './embedder.ts';
import { KvCache, detectCacheLayout, type CacheLayout } from './kv-cache.ts';

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
}

export interface LayerAttentions {
  readonly layers: readonly Float32Array[]; // each [batch, heads, seq, keys]
  readonly numHeads: number;
  readonly seqLength: number;
  readonly numKeys: number;
}

/** Cross-attention (encoder-decoder) or self-attention (decoder-only) weights, by output name. */
const ATTENTION_OUTPUT = /^(cross_attentions|decoder_attentions)\.(\d+)$/;

export class DecoderRunner {
  private readonly inputNames: ReadonlySet<string>;
  /** The attention outputs, in layer order (empty: the plain graph). */
  readonly attentionOutputs: readonly string[];
  /** Float inputs fp16 exports declare as float16 (hidden states, embeddings); Iris keeps float32 and converts at the feed. */
  private readonly halfInputs: ReadonlySet<string>;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly layout: CacheLayout,
    /** For graphs fed inputs_embeds (joint embedding): ids to vectors, image features in place of image tokens. */
    private readonly embedder: TokenEmbedder | undefined,
  ) {
    this.inputNames = new Set(session.inputNames);
    this.attentionOutputs = session.outputNames.filter((n) => ATTENTION_OUTPUT.test(n)).sort((a, b) => layerOf(a) - layerOf(b));
    this.halfInputs = new Set(session.inputMetadata.filter((m) => m.isTensor && m.type === 'float16').map((m) => m.name));
  }

  static async load(path: string, options: ort.InferenceSession.SessionOptions, embedder?: TokenEmbedder): Promise<DecoderRunner> {
    const session = await ort.InferenceSession.create(path, options);
    if (session.inputNames.includes('inputs_embeds') && !embedder) throw new IrisError('MODEL_NOT_FOUND', `${path} is fed inputs_embeds, and the folder has no onnx/embed_tokens.onnx`);
    const metadata = session.inputMetadata.map((m) => ({ name: m.name, shape: m.isTensor ? m.shape : undefined, type: m.isTensor ? m.type : undefined }));
    let layout: CacheLayout;
    try {
      layout = detectCacheLayout(metadata);
    } catch (err) {
      throw new IrisError('MODEL_NOT_FOUND', `${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return new DecoderRunner(session, layout, embedder);
  }

  /** After the first step, does the graph still read the image? (A cached cross-attention K/V or image tokens in the cache make it not.) */
  get readsImageEveryStep(): boolean {
    return this.inputNames.has('encoder_hidden_states') && this.layout.naming === 'self-only';
  }

  emptyCache(batchSize: number): KvCache {
    return KvCache.empty(this.layout, batchSize);
  }

  async step(input: DecoderStepInput): Promise<DecoderStepOutput> {
    const { tokens, cache } = input;
    const outputs = await this.session.run(await this.feeds(input), cache.outputsToFetch(this.session.outputNames));
    const logits = input.isAllPositions ? tensorFloats(outputs.logits) : lastPositionLogits(outputs.logits, cache.batchSize, tokens.seqLength);
    const result: DecoderStepOutput = { logits, vocabSize: outputs.logits.dims[2], cache: cache.advance(outputs, tokens.seqLength) };
    if (this.attentionOutputs.length > 0) {
      const first = outputs[this.attentionOutputs[0]];
      const [, numHeads, seqLength, numKeys] = first.dims;
      result.attentions = { layers: this.attentionOutputs.map((n) => tensorFloats(outputs[n])), numHeads, seqLength, numKeys };
    }
    return result;
  }

  /** Exactly the inputs the graph declares; a declared input Iris cannot supply is an error. */
  private async feeds(input: DecoderStepInput): Promise<Record<string, ort.Tensor>> {
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
    if (this.inputNames.has('encoder_hidden_states')) available.encoder_hidden_states = this.hiddenTensor(encoderStates.data, [batch, encoderStates.numPatches, encoderStates.hiddenSize]);
    if (this.embedder) {
      const embeds = await this.embedder.embed(tokens.inputIds, batch, tokens.seqLength, encoderStates);
      available.inputs_embeds = this.hiddenTensor(embeds, [batch, tokens.seqLength, embeds.length / (batch * tokens.seqLength)], 'inputs_embeds');
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) {
      if (!(name in available)) throw new IrisError('MODEL_NOT_FOUND', `decoder declares input '${name}', which Iris does not know how to supply`);
      feeds[name] = available[name];
    }
    return feeds;
  }

  /** A float input in the type the graph declares (fp16 exports take float16; Iris computes in float32). */
  private hiddenTensor(data: Float32Array, dims: number[], name = 'encoder_hidden_states'): ort.Tensor {
    return this.halfInputs.has(name) ? new ort.Tensor('float16', floatToHalf(data), dims) : new ort.Tensor('float32', data, dims);
  }

  async release(): Promise<void> {
    await this.session.release(); // the embedder, shared with the attentions variant, is released by its owner
  }
}

function layerOf(name: string): number {
  return Number(ATTENTION_OUTPUT.exec(name)![2]);
}

/** Token ids stay Int32 everywhere else; int64 exists only at the ONNX boundary. */
function int64(values: Int32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

function lastPositionLogits(logits: ort.Tensor, batch: number, seqLength: number): Float32Array {
  const vocab = logits.dims[2];
  const data = tensorFloats(logits); // fp16 exports return float16 logits; sampling works in float32
  const out = new Float32Array(batch * vocab); // [batch, vocab]
  for (let row = 0; row < batch; row++) {
    const start = (row * seqLength + seqLength - 1) * vocab;
    out.set(data.subarray(start, start + vocab), row * vocab);
  }
  return out;
}
