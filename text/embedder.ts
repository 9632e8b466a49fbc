// Token embeddings for decoders fed `inputs_embeds` (joint embedding, the LLaVA layout):
// the `embed_tokens` session turns ids into vectors, then each row's image tokens are
// replaced, in order, by that row's projected image features: the one place image and
// text meet in this family. Throws when a row's image tokens and features disagree.
import * as ort from 'onnxruntime-node';
import { IrisError } from '../src/contract/types.ts';
import { tensorFloats } from '../src/contract/float16.ts';

/** Each row's image features ([rows, numPatches, hiddenSize]; the decoder runner's EncoderStates). */
interface RowImages {
  readonly data: Float32Array;
  readonly numPatches: number;
  readonly hiddenSize: number;
}

export class TokenEmbedder {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly imageTokenId: number,
  ) {}

  static async load(path: string, imageTokenId: number, options: ort.InferenceSession.SessionOptions): Promise<TokenEmbedder> {
    const session = await ort.InferenceSession.create(path, options);
    if (!session.inputNames.includes('input_ids') || !session.outputNames.includes('inputs_embeds')) {
      throw new IrisError('MODEL_NOT_FOUND', `${path}: expected input input_ids and output inputs_embeds`);
    }
    return new TokenEmbedder(session, imageTokenId);
  }

  /** [batch, seq] ids → [batch, seq, d] embeddings, image tokens replaced by the rows' features ([batch, numPatches, d]). */
  async embed(inputIds: Int32Array, batch: number, seqLength: number, images: RowImages): Promise<Float32Array> {
    const ids = new ort.Tensor('int64', BigInt64Array.from(inputIds, (v) => BigInt(v)), [batch, seqLength]);
    const out = (await this.session.run({ input_ids: ids })).inputs_embeds;
    const embeds = Float32Array.from(tensorFloats(out)); // [batch, seq, d]; a copy ORT does not own
    const d = out.dims[2];
    for (let row = 0; row < batch; row++) {
      let k = 0;
      for (let j = 0; j < seqLength; j++) {
        if (inputIds[row * seqLength + j] !== this.imageTokenId) continue;
        if (k >= images.numPatches || images.hiddenSize !== d) {
          throw new Error(`row ${row} has more image tokens than its ${images.numPatches} image features of size ${images.hiddenSize} (embeddings: ${d})`);
        }
        const from = (row * images.numPatches + k++) * d;
        embeds.set(images.data.subarray(from, from + d), (row * seqLength + j) * d);
      }
      if (k !== 0 && k !== images.numPatches) throw new Error(`row ${row} has ${k} image tokens for ${images.numPatches} image features`);
    }
    return embeds;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
