// The joint-embedding (LLaVA layout) training pipeline end to end on its tiny preset: a
// few teacher-forced steps in PyTorch, the export, onnxruntime vs PyTorch (exact greedy ids
// and logits on every step, at batch 1 and as one left-padded batch, in onnx_parity.mjs),
// and stock transformers.js generating
// PyTorch's greedy tokens from the exported folder.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoProcessor, LlavaForConditionalGeneration, RawImage, type Tensor, env } from '@huggingface/transformers';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.ts';

env.allowRemoteModels = false;
env.useFSCache = false;

const TRAINING = join(ROOT, 'training');

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { cwd: TRAINING, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
}

describe('joint model training smoke test (tiny preset, LLaVA layout)', () => {
  const work = mkdtempSync(join(tmpdir(), 'iris-train-joint-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('trains a few steps, exports, and onnxruntime and transformers.js reproduce PyTorch', async () => {
    run('/usr/bin/python3', ['train_joint.py', '--preset', 'tiny', '--out', join(work, 'run'), '--train-size', '512', '--val-size', '16',
      '--epochs', '1', '--batch', '16', '--max-steps', '24', '--val-every', '0', '--threads', '1']);
    const history = JSON.parse(readFileSync(join(work, 'run/history.json'), 'utf8')) as { step: number; loss: number }[];
    expect(history.at(-1)?.step).toBe(24);
    expect(Number.isFinite(history.at(-1)?.loss)).toBe(true);

    const model = join(work, 'model');
    const parityPath = join(model, 'parity.json');
    const report = JSON.parse(run('/usr/bin/python3', ['export_joint.py', '--checkpoint', join(work, 'run/model.pt'), '--out', model,
      '--parity', parityPath]).trim().split('\n').at(-1) ?? '{}') as { bytes: Record<string, number> };
    expect(Object.keys(report.bytes).sort()).toEqual(
      ['decoder_model_merged.onnx', 'decoder_with_attentions_model_merged.onnx', 'embed_tokens.onnx', 'vision_encoder.onnx']);
    for (const f of ['config.json', 'generation_config.json', 'preprocessor_config.json', 'processor_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(existsSync(join(model, f)), f).toBe(true);
    }
    const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as { model_type: string; text_config: { model_type: string } };
    expect([config.model_type, config.text_config.model_type]).toEqual(['llava', 'llama']);

    // onnxruntime vs PyTorch, every greedy step (exits non-zero on a token mismatch)
    const ort = JSON.parse(run(process.execPath, ['onnx_parity.mjs', model, parityPath]).trim()) as {
      greedy_ids_equal: boolean; max_abs_logits_diff: number; attentions_variant: { greedy_ids_equal: boolean; max_abs_logits_diff_vs_plain: number };
      left_padded_batch: { rows: number; greedy_ids_equal: boolean; max_abs_logits_diff: number };
    };
    expect(ort.greedy_ids_equal).toBe(true);
    expect(ort.max_abs_logits_diff).toBeLessThan(1e-4);
    expect(ort.attentions_variant.greedy_ids_equal).toBe(true);
    expect(ort.attentions_variant.max_abs_logits_diff_vs_plain).toBe(0);
    expect(ort.left_padded_batch.greedy_ids_equal).toBe(true); // all cases in one batch, own loop with the real mask
    expect(ort.left_padded_batch.max_abs_logits_diff).toBeLessThan(1e-4);

    // stock transformers.js on the exported folder, batch 1
    const parity = JSON.parse(readFileSync(parityPath, 'utf8')) as {
      max_new_tokens: number; cases: { image_file: string; prompt_text: string; input_ids: number[]; greedy_ids: number[] }[];
    };
    const processor = await AutoProcessor.from_pretrained(model, { local_files_only: true });
    const llava = await LlavaForConditionalGeneration.from_pretrained(model, { local_files_only: true, dtype: 'fp32', device: 'cpu' });
    try {
      for (const c of parity.cases.slice(0, 3)) {
        const inputs = await processor(await RawImage.read(join(ROOT, 'assets/samples', c.image_file)), c.prompt_text);
        const out = (await llava.generate({ ...inputs, max_new_tokens: parity.max_new_tokens, do_sample: false })) as Tensor;
        expect((out.tolist() as bigint[][])[0].slice(c.input_ids.length).map(Number), c.image_file).toEqual(c.greedy_ids);
      }
    } finally {
      await llava.dispose();
    }
  }, 300_000);
});
