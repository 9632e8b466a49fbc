// Each shipped model's quality table, measured through Iris's own pipeline on held-out
// scenes that the training generator renders now, from the test seed the training never
// saw (the 128 px PNG, and the same scenes resized to 64 and 256 px as JPEG quality 75),
// must meet the spec's quality bars and reproduce the table PyTorch measured at training
// time (eval_pytorch.json) within a point: the TypeScript preprocessing and decoding lose
// nothing. The same for the out-of-domain part (600 images, 200 of them photographs, and
// out-of-grammar questions about the scenes): the spec's refusal bars are met and
// eval_ood_pytorch.json is reproduced within a point.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateFolder } from '../../src/cli/eval.ts';
import { meetsOodSpec, meetsSpec } from '../../src/cli/eval-report.ts';
import { createEngine } from '../../src/engine/create-engine.ts';
import { ROOT, writeHeldOut } from '../helpers.ts';

const SCENES = 1000;
const OOD_IMAGES = 600;

interface Scores { caption: number; answer: number; continuation: number; by_kind: Record<string, number> }

const SHIPPED_MODELS = ['shapes-base', 'shapes-joint'].map((name) => join(ROOT, 'assets/models', name)).filter((dir) => existsSync(join(dir, 'onnx/decoder_model_merged.onnx')));

for (const SHIPPED of SHIPPED_MODELS) describe(`${SHIPPED.split('/').at(-1)} quality table`, () => {
  const work = mkdtempSync(join(tmpdir(), 'iris-quality-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it(`reproduces PyTorch's table on ${SCENES} held-out scenes`, async () => {
    const reference = JSON.parse(readFileSync(join(SHIPPED, 'eval_pytorch.json'), 'utf8')) as Record<string, Scores>;
    const referenceOod = JSON.parse(readFileSync(join(SHIPPED, 'eval_ood_pytorch.json'), 'utf8')) as Record<string, Record<string, number>>;
    writeHeldOut(work, SCENES, OOD_IMAGES);
    const engine = await createEngine({ modelDir: SHIPPED });
    try {
      const report = await evaluateFolder(engine, work);
      const verdict = meetsSpec(report);
      const oodVerdict = meetsOodSpec(report);
      console.log(verdict.summary, oodVerdict.summary);
      expect(verdict.isMet, verdict.summary).toBe(true);
      expect(oodVerdict.isMet, oodVerdict.summary).toBe(true);
      for (const [variant, want] of Object.entries(referenceOod)) {
        const got = report.ood![variant] as unknown as Record<string, number>;
        expect(got.images).toBe(OOD_IMAGES);
        for (const name of ['caption', 'answer', 'out_of_grammar', 'continuation', 'scenes_out_of_grammar', 'scenes_refused']) {
          expect(Math.abs(got[name] - want[name]), `${variant} out of domain ${name}: ${got[name]} vs ${want[name]}`).toBeLessThanOrEqual(1);
        }
      }
      expect(Object.keys(report.variants).sort()).toEqual(Object.keys(reference).sort());
      for (const [variant, want] of Object.entries(reference)) {
        const got = report.variants[variant];
        const pairs: [string, number, number][] = [
          ['caption', got.caption, want.caption], ['answer', got.answer, want.answer], ['continuation', got.continuation, want.continuation],
          ...Object.entries(want.by_kind).map(([k, v]): [string, number, number] => [k, got.by_kind[k], v]),
        ];
        for (const [name, value, expected] of pairs) expect(Math.abs(value - expected), `${variant} ${name}: ${value} vs ${expected}`).toBeLessThanOrEqual(1);
      }
      expect(report.variants.png128.scenes).toBe(SCENES);
      expect(report.variants.png128.questions).toBeGreaterThanOrEqual(4 * SCENES);
    } finally {
      await engine.release();
    }
  }, 600_000);
});
