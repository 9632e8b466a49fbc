// The training pipeline end to end on a tiny configuration: a few teacher-forced steps in
// PyTorch, the ONNX export, then the exported folder loaded by Iris in Node, whose greedy
// tokens must equal PyTorch's on the exporter's parity cases.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Pipeline } from '../../src/pipeline.ts';
import { ROOT, pngFromPixels, readParity } from '../helpers.ts';

const PYTHON = '/usr/bin/python3';
const TRAINING = join(ROOT, 'training');

function python(args: string[]): string {
  return execFileSync(PYTHON, args, { cwd: TRAINING, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
}

describe('training smoke test (tiny preset)', () => {
  const work = mkdtempSync(join(tmpdir(), 'iris-train-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('trains a few steps, exports, and Iris reproduces PyTorch greedy tokens', async () => {
    python(['train.py', '--preset', 'tiny', '--out', join(work, 'run'), '--train-size', '128', '--val-size', '16',
      '--epochs', '1', '--batch', '16', '--max-steps', '4', '--threads', '1']);
    const history = JSON.parse(readFileSync(join(work, 'run/history.json'), 'utf8')) as { step: number; loss: number }[];
    expect(history.at(-1)?.step).toBe(4);
    expect(Number.isFinite(history.at(-1)?.loss)).toBe(true);

    const model = join(work, 'model');
    const report = JSON.parse(python(['export.py', '--checkpoint', join(work, 'run/model.pt'), '--out', model,
      '--parity', join(work, 'parity.json')]).trim().split('\n').at(-1) ?? '{}') as { bytes: Record<string, number> };
    for (const f of ['config.json', 'generation_config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(existsSync(join(model, f)), f).toBe(true);
    }
    expect(Object.keys(report.bytes).sort()).toEqual(
      ['decoder_model_merged.onnx', 'decoder_with_attentions_model_merged.onnx', 'encoder_model.onnx']);

    const parity = readParity(work);
    const pipeline = await Pipeline.load({ modelDir: model, threads: 1 });
    try {
      for (const c of parity.cases.filter((x) => x.promptIds.length === 1)) {
        const image = await pngFromPixels(c.image, parity.imageSize);
        const result = await pipeline.generate({ task: 'caption', image, options: { maxNewTokens: 20 } });
        expect(result.tokens.map((t) => t.id)).toEqual(c.greedyIds.filter((id) => id !== parity.eosTokenId));
      }
    } finally {
      await pipeline.release();
    }
  }, 300_000);
});
