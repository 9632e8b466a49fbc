// The overlay: the heatmap's brightest region lands on the hot patch, at the image's own
// aspect ratio; the contact sheet holds every panel.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { contactSheet, renderOverlay } from '../../vision/heatmap.ts';

async function grey(width: number, height: number): Promise<Uint8Array> {
  return new Uint8Array(await sharp({ create: { width, height, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toBuffer());
}

describe('attention overlay', () => {
  it('draws the hot patch where the grid puts it, at the image aspect ratio', async () => {
    const weights = new Array(16).fill(0);
    weights[1 * 4 + 3] = 1; // row 1, column 3
    const png = await renderOverlay(await grey(200, 100), { rows: 4, cols: 4, weights });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([200, 100]);
    let best = 0;
    for (let p = 0; p < info.width * info.height; p++) {
      const lum = (i: number): number => data[i * info.channels] + data[i * info.channels + 1];
      if (lum(p) > lum(best)) best = p;
    }
    const [x, y] = [best % info.width, Math.floor(best / info.width)];
    expect(Math.floor(x / 50)).toBe(3);
    expect(Math.floor(y / 25)).toBe(1);
  });

  it('refuses a grid whose weights do not fill it, and lays panels out with their labels', async () => {
    await expect(renderOverlay(await grey(32, 32), { rows: 2, cols: 2, weights: [1, 0] })).rejects.toThrow(/needs 4 weights/);
    const panel = await renderOverlay(await grey(40, 40), { rows: 1, cols: 1, weights: [1] });
    const sheet = await sharp(await contactSheet([1, 2, 3].map((i) => ({ png: panel, label: `t${i}` })), 2)).metadata();
    expect(sheet.width).toBeGreaterThanOrEqual(80);
    expect(sheet.height).toBeGreaterThanOrEqual(80);
  });
});
