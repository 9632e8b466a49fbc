// `--attention` on the command line: overlays and a contact sheet for caption/ask/generate,
// the pointing game's report for eval, and a clear error without a folder.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES, isShippedModelPresent, SHIPPED_MODEL, syntheticImage, writeHeldOut } from '../helpers.ts';
import { iris } from './support.ts';

describe('iris --attention', () => {
  const work = mkdtempSync(join(tmpdir(), 'iris-cli-attention-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('writes one overlay per token and a contact sheet, and prints their paths', async () => {
    const image = join(work, 'scene.png');
    writeFileSync(image, await syntheticImage(90, 60, 2));
    const out = join(work, 'maps');
    const res = await iris(['caption', image, '--model', FIXTURES.encoderDecoder, '--min-new-tokens', '3', '--max-new-tokens', '3', '--attention', out]);
    expect(res.code, res.stderr).toBe(0);
    const files = readdirSync(out).sort();
    expect(files).toHaveLength(4);
    expect(files.at(-1)).toBe('scene-sheet.png');
    for (const f of files) expect(res.stderr).toContain(join(out, f));
    const overlay = await sharp(join(out, files[0])).metadata();
    expect([overlay.width, overlay.height]).toEqual([90, 60]);
  }, 120_000);

  it('eval --attention reports the pointing game; --attention without a folder is refused', async () => {
    const folder = join(work, 'held-out');
    writeHeldOut(folder, 12);
    const res = await iris(['eval', folder, '--model', FIXTURES.encoderDecoder, '--attention', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout.trim().split('\n').at(-1)!) as { scenesWithBoxes: number; defaultAggregation: string; bestAggregation: string; variant: string; rates: Record<string, Record<string, number>> };
    expect(report.scenesWithBoxes).toBeGreaterThan(0);
    expect([report.variant, report.defaultAggregation]).toEqual(['png128', 'mean']); // no attention.json: the default
    expect(existsSync(join(FIXTURES.encoderDecoder, 'attention.json'))).toBe(false); // without --update-model it writes nothing into the model
    // the random fixture captions nothing right: no evidence, so no choice is written
    const refused = await iris(['eval', folder, '--model', FIXTURES.encoderDecoder, '--attention', '--update-model']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/INVALID_OPTIONS.*nothing to choose a map by/);
    expect(existsSync(join(FIXTURES.encoderDecoder, 'attention.json'))).toBe(false);
    const bare = await iris(['caption', join(work, 'scene.png'), '--model', FIXTURES.encoderDecoder, '--attention']);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toMatch(/INVALID_OPTIONS.*--attention needs a folder/);
  }, 180_000);

  it.skipIf(!isShippedModelPresent)('eval --attention --update-model keeps the best map in attention.json, which the model then uses', async () => {
    const folder = join(work, 'held-out-shapes');
    writeHeldOut(folder, 40);
    const copy = join(work, 'model-copy');
    cpSync(SHIPPED_MODEL, copy, { recursive: true, filter: (src) => !/_(fp16|quantized)\.onnx$/.test(src) });
    rmSync(join(copy, 'attention.json'), { force: true });
    const updated = await iris(['eval', folder, '--model', copy, '--attention', '--update-model', '--json']);
    expect(updated.code, updated.stderr).toBe(0);
    const kept = JSON.parse(readFileSync(join(copy, 'attention.json'), 'utf8')) as { aggregation: string };
    expect(kept.aggregation).toBe((JSON.parse(updated.stdout.trim().split('\n').at(-1)!) as { bestAggregation: string }).bestAggregation);
    writeFileSync(join(copy, 'attention.json'), JSON.stringify({ aggregation: 'first' }));
    const after = await iris(['eval', folder, '--model', copy, '--attention', '--json']);
    expect((JSON.parse(after.stdout.trim().split('\n').at(-1)!) as { defaultAggregation: string }).defaultAggregation).toBe('first');
    writeFileSync(join(copy, 'attention.json'), JSON.stringify({ aggregation: 'loudest' }));
    const junk = await iris(['caption', join(work, 'scene.png'), '--model', copy]);
    expect(junk.code).toBe(1);
    expect(junk.stderr).toMatch(/MODEL_NOT_FOUND.*attention\.json.*unknown aggregation 'loudest'/);
  }, 300_000);
});
