// The vision encoder session: many images per call, one embedding per image out.
import * as ort from 'onnxruntime-node';
import { IrisError } from '../src/contract/types.ts';
import { floatToHalf, tensorFloats } from '../src/contract/float16.ts';

/** One image's features, ready to condition the decoder. */
export interface ImageEmbedding {
  data: Float32Array; // [numPatches, hiddenSize]
  numPatches: number;
  hiddenSize: number;
}

const FEATURE_OUTPUTS = ['last_hidden_state', 'image_features'];

export class VisionEncoder {
  /** fp16 exports may take float16 pixel_values; Iris preprocesses in float32 and converts here. */
  private readonly isHalfInput: boolean;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly height: number,
    readonly width: number,
    /** `last_hidden_state` (a vision encoder-decoder's encoder) or `image_features` (a LLaVA vision encoder with its projector). */
    private readonly outputName: string,
  ) {
    const input = session.inputMetadata.find((m) => m.name === 'pixel_values');
    this.isHalfInput = input?.isTensor === true && input.type === 'float16';
  }

  static async load(path: string, size: { height: number; width: number }, options: ort.InferenceSession.SessionOptions): Promise<VisionEncoder> {
    const session = await ort.InferenceSession.create(path, options);
    const outputName = FEATURE_OUTPUTS.find((n) => session.outputNames.includes(n));
    if (!session.inputNames.includes('pixel_values') || !outputName) {
      throw new IrisError('MODEL_NOT_FOUND', `${path}: expected input pixel_values and output ${FEATURE_OUTPUTS.join(' or ')}`);
    }
    return new VisionEncoder(session, size.height, size.width, outputName);
  }

  /** Encode a batch of preprocessed images ([3, H, W] each) in a single session run. */
  async encode(images: readonly Float32Array[]): Promise<ImageEmbedding[]> {
    if (images.length === 0) return [];
    const plane = 3 * this.height * this.width;
    const batch = new Float32Array(images.length * plane); // [n, 3, H, W]
    images.forEach((img, i) => {
      if (img.length !== plane) throw new IrisError('BAD_IMAGE', `pixel_values has ${img.length} values, expected ${plane}`);
      batch.set(img, i * plane);
    });
    const dims = [images.length, 3, this.height, this.width];
    const input = this.isHalfInput ? new ort.Tensor('float16', floatToHalf(batch), dims) : new ort.Tensor('float32', batch, dims);
    const outputs = await this.session.run({ pixel_values: input });
    const hidden = outputs[this.outputName];
    const [, numPatches, hiddenSize] = hidden.dims;
    const all = tensorFloats(hidden); // [n, patches, d]
    const per = numPatches * hiddenSize;
    return images.map((_, i) => ({ data: all.slice(i * per, (i + 1) * per), numPatches, hiddenSize }));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
