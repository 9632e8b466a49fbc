// `--attention` on the command line: overlays and a contact sheet for caption/ask/generate,
// the pointing game's report for eval, and a clear error without a folder.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES, syntheticImage, writeHeldOut } from '../helpers.ts';
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
    const report = JSON.parse(res.stdout.trim().split('\n').at(-1)!) as { scenesWithBoxes: number; defaultAggregation: string; variant: string };
    expect(report.scenesWithBoxes).toBeGreaterThan(0);
    expect([report.variant, report.defaultAggregation]).toEqual(['png128', 'first+last']);
    expect(existsSync(join(FIXTURES.encoderDecoder, 'eval.json'))).toBe(false); // the pointing game writes nothing into the model
    const bare = await iris(['caption', join(work, 'scene.png'), '--model', FIXTURES.encoderDecoder, '--attention']);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toMatch(/INVALID_OPTIONS.*--attention needs a folder/);
  }, 180_000);
});
