// The training pipeline end to end on a tiny configuration: a few teacher-forced steps in
// PyTorch, the ONNX export, then the exported folder loaded by Iris in Node, whose greedy
// tokens must equal PyTorch's on the exporter's parity cases (its decode steps on the
// exported decode-only graph). Then the draft model for
// speculative decoding: distilled from that checkpoint, exported next to it, and used by
// the engine, whose greedy tokens must not change. Last, Medusa heads: the PyTorch model
// rebuilt from the exported ONNX files alone (its checkpoint unused) must reproduce the
// parity cases, and heads trained on it, exported as medusa/, must leave greedy tokens as
// they are while the engine verifies their guesses.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/create-engine.ts';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import type { SpeculativeMode } from '../../src/contract/types.ts';
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
      ['decoder_model_merged.onnx', 'decoder_with_attentions_model_merged.onnx', 'decoder_with_past_model.onnx', 'encoder_model.onnx']);

    const parity = readParity(work);
    const pipeline = await ReferenceDecoder.load({ modelDir: model, threads: 1 });
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

  it('distills a one-layer draft, exports it beside the model, and speculative decoding through it changes no token', async () => {
    const model = join(work, 'model');
    python(['train_draft.py', '--teacher', join(work, 'run/model.pt'), '--out', join(work, 'draft-run'), '--steps', '3',
      '--train-size', '64', '--batch', '16', '--threads', '1']);
    const metrics = JSON.parse(readFileSync(join(work, 'draft-run/history.json'), 'utf8')) as { steps: number; agreement_with_main: number };
    expect(metrics.steps).toBe(3);
    expect(metrics.agreement_with_main).toBeGreaterThanOrEqual(0);
    expect(metrics.agreement_with_main).toBeLessThanOrEqual(1);
    const report = JSON.parse(python(['export.py', '--checkpoint', join(work, 'draft-run/model.pt'), '--out', join(model, 'draft'), '--draft'])
      .trim().split('\n').at(-1) ?? '{}') as { bytes: Record<string, number> };
    expect(Object.keys(report.bytes)).toEqual(['decoder_model_merged.onnx', 'decoder_with_past_model.onnx']);
    expect((JSON.parse(readFileSync(join(model, 'draft/config.json'), 'utf8')) as { decoder: { decoder_layers: number } }).decoder.decoder_layers).toBe(1);

    const parity = readParity(work);
    const images = await Promise.all(parity.cases.map((c) => pngFromPixels(c.image, parity.imageSize)));
    const run = async (mode: SpeculativeMode): Promise<{ ids: number[][]; drafted: number }> => {
      const engine = await createEngine({ modelDir: model, threads: 1, speculative: mode, speculativeMaxBatch: 32 });
      try {
        const results = await Promise.all(images.map((image) => engine.generate({ task: 'caption', image, options: { minNewTokens: 8, maxNewTokens: 12 } })));
        return { ids: results.map((r) => r.tokens.map((t) => t.id)), drafted: results.reduce((n, r) => n + (r.timings.draftedTokens ?? 0), 0) };
      } finally {
        await engine.release();
      }
    };
    const [plain, drafted] = [await run('off'), await run('draft')]; // a 4-step model ends at once: min tokens make it decode
    expect(drafted.ids).toEqual(plain.ids);
    expect(drafted.drafted).toBeGreaterThan(0);
  }, 300_000);

  it('rebuilds the model from its ONNX files, trains Medusa heads on it, and speculation through them changes no token', async () => {
    const model = join(work, 'model');
    const rebuilt = JSON.parse(python(['from_onnx.py', '--model', model, '--out', join(work, 'rebuilt.pt'), '--parity', '--parity-file', join(work, 'parity.json')])
      .trim().split('\n').at(-1) ?? '{}') as { parity: { cases: number; greedy_equal: number; max_logit_diff: number } };
    expect(rebuilt.parity.cases).toBe(8);
    expect(rebuilt.parity.greedy_equal).toBe(8);
    expect(rebuilt.parity.max_logit_diff).toBeLessThan(1e-4); // the parity file rounds logits to 5 decimals

    const report = JSON.parse(python(['medusa.py', '--model', model, '--heads', '3', '--train-size', '64', '--val-size', '16', '--epochs', '2', '--batch', '16', '--threads', '1'])
      .trim().split('\n').at(-1) ?? '{}') as { bytes: Record<string, number>; validation: { head_top1: number[] } };
    expect(Object.keys(report.bytes)).toEqual(['decoder_model_merged.onnx', 'decoder_with_past_model.onnx']);
    expect(report.validation.head_top1).toHaveLength(3);
    expect((JSON.parse(readFileSync(join(model, 'medusa/config.json'), 'utf8')) as { medusa_num_heads: number }).medusa_num_heads).toBe(3);

    const parity = readParity(work);
    const images = await Promise.all(parity.cases.map((c) => pngFromPixels(c.image, parity.imageSize)));
    const run = async (mode: SpeculativeMode): Promise<{ ids: number[][]; drafted: number }> => {
      const engine = await createEngine({ modelDir: model, threads: 1, speculative: mode, speculativeMaxBatch: 32 });
      try {
        expect(engine.model.headsRunner?.numHeads).toBe(3);
        const results = await Promise.all(images.map((image) => engine.generate({ task: 'caption', image, options: { minNewTokens: 8, maxNewTokens: 12 } })));
        return { ids: results.map((r) => r.tokens.map((t) => t.id)), drafted: results.reduce((n, r) => n + (r.timings.draftedTokens ?? 0), 0) };
      } finally {
        await engine.release();
      }
    };
    const [plain, guessed] = [await run('off'), await run('medusa')];
    expect(guessed.ids).toEqual(plain.ids);
    expect(guessed.drafted).toBeGreaterThan(0);
  }, 300_000);
});
