// The joint-embedding (LLaVA layout) fixture, and shapes-joint once trained, against stock
// transformers.js, offline, at batch 1: AutoProcessor + LlavaForConditionalGeneration on
// the sample images must see the pixels and input_ids PyTorch saw, give PyTorch's
// first-step logits, and generate PyTorch's greedy tokens (the references export_joint.py
// stored in parity.json).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AutoProcessor, LlavaForConditionalGeneration, RawImage, type Tensor, env } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.ts';

env.allowRemoteModels = false;
env.useFSCache = false;

const SAMPLES = join(ROOT, 'assets/samples');
const FOLDERS = ['tiny-random-llava', 'shapes-joint'].map((name) => join(ROOT, 'assets/models', name))
  .filter((dir) => existsSync(join(dir, 'onnx/decoder_model_merged.onnx')));

interface Case {
  image_file: string;
  task: string;
  image_uint8_hwc: string;
  prompt_text: string;
  input_ids: number[];
  greedy_ids: number[];
  first_logits: number[];
}
interface Parity {
  image_size: number;
  num_image_tokens: number;
  image_token_id: number;
  max_new_tokens: number;
  cases: Case[];
  pytorch_vs_onnxruntime: { greedy_ids_equal: boolean; max_abs_logits_diff: number };
}

type Processor = Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>;
type Model = Awaited<ReturnType<typeof LlavaForConditionalGeneration.from_pretrained>>;
type Inputs = { input_ids: Tensor; attention_mask: Tensor; pixel_values: Tensor };

/** PyTorch's input: HWC uint8 at the input size, rescaled and normalized as data.preprocess does. */
function expectedPixels(b64: string, s: number): Float32Array {
  const hwc = Buffer.from(b64, 'base64');
  const out = new Float32Array(3 * s * s);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < s * s; p++) out[c * s * s + p] = Math.fround(Math.fround(Math.fround(hwc[p * 3 + c] / 255) - 0.5) / 0.5);
  }
  return out;
}

for (const DIR of FOLDERS) describe(`transformers.js LlavaForConditionalGeneration vs PyTorch: ${DIR.split('/').at(-1)}`, () => {
  const parity = JSON.parse(readFileSync(join(DIR, 'parity.json'), 'utf8')) as Parity;
  let processor: Processor;
  let model: Model;
  const inputs: Inputs[] = [];
  beforeAll(async () => {
    processor = await AutoProcessor.from_pretrained(DIR, { local_files_only: true });
    model = await LlavaForConditionalGeneration.from_pretrained(DIR, { local_files_only: true, dtype: 'fp32', device: 'cpu' });
    for (const c of parity.cases) {
      // images first (trap 11); one <image> per prompt, expanded by the processor
      inputs.push((await processor(await RawImage.read(join(SAMPLES, c.image_file)), c.prompt_text)) as Inputs);
    }
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('the exporter checked its ONNX files against PyTorch in onnxruntime', () => {
    expect(parity.pytorch_vs_onnxruntime.greedy_ids_equal).toBe(true);
    expect(parity.pytorch_vs_onnxruntime.max_abs_logits_diff).toBeLessThan(1e-4);
    expect(new Set(parity.cases.map((c) => c.image_file)).size).toBeGreaterThanOrEqual(2);
    expect(new Set(parity.cases.map((c) => c.task))).toEqual(new Set(['caption', 'answer', 'generate']));
  });

  it('the processor gives the pixels and input_ids (image tokens first) PyTorch used', () => {
    for (const [n, c] of parity.cases.entries()) {
      const { input_ids, pixel_values, attention_mask } = inputs[n];
      expect(Array.from(input_ids.data as BigInt64Array, Number)).toEqual(c.input_ids);
      expect(c.input_ids.filter((id) => id === parity.image_token_id)).toHaveLength(parity.num_image_tokens);
      expect(Array.from(attention_mask.data as BigInt64Array, Number).every((v) => v === 1)).toBe(true);
      expect(pixel_values.dims).toEqual([1, 3, parity.image_size, parity.image_size]);
      const want = expectedPixels(c.image_uint8_hwc, parity.image_size);
      expect(Buffer.from((pixel_values.data as Float32Array).buffer).equals(Buffer.from(want.buffer)), c.image_file).toBe(true);
    }
  });

  it("gives PyTorch's first-step logits", async () => {
    for (const [n, c] of parity.cases.entries()) {
      const { logits } = (await model(inputs[n])) as { logits: Tensor };
      const [, seq, vocab] = logits.dims;
      const last = (logits.data as Float32Array).subarray((seq - 1) * vocab, seq * vocab);
      const diff = Math.max(...Array.from(last, (v, i) => Math.abs(v - c.first_logits[i])));
      expect(diff, `${c.image_file} ${c.task}`).toBeLessThan(1e-4);
    }
    // the image matters: the same prompt on different images gives different logits
    const captions = parity.cases.filter((c) => c.task === 'caption');
    expect(captions.length).toBeGreaterThanOrEqual(2);
    expect(captions[0].first_logits).not.toEqual(captions[1].first_logits);
  });

  it("generates PyTorch's greedy tokens", async () => {
    for (const [n, c] of parity.cases.entries()) {
      const out = (await model.generate({ ...inputs[n], max_new_tokens: parity.max_new_tokens, do_sample: false })) as Tensor;
      // sequences include the prompt (with its image tokens): slice it off
      const ids = (out.tolist() as bigint[][])[0].slice(c.input_ids.length).map(Number);
      expect(ids, `${c.image_file} ${c.task}`).toEqual(c.greedy_ids);
    }
  });
});
