// The PNG fast path (vision/png.ts) against sharp's decode of the same bytes: identical
// pixels for every kind it takes (grey, RGB, palette; all five scanline filters, several
// IDAT chunks, harmless ancillary chunks), and no answer (sharp decides) for everything
// else: alpha, 16-bit, interlaced, colour chunks, a bad CRC, a truncated file, which
// decodeImage then decodes or refuses exactly as before. Bytes after IEND are ignored by both.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, toRgb } from '../../vision/image.ts';
import { decodeSimplePng, simplePngHeader } from '../../vision/png.ts';
import { probeImage } from '../../vision/probe.ts';
import { ROOT } from '../helpers.ts';

const LIMIT = 16_777_216;

/** sharp's pixels, as decodeImage made them before the fast path. */
async function viaSharp(bytes: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(bytes).rotate().flatten({ background: { r: 255, g: 255, b: 255 } }).raw().toBuffer({ resolveWithObject: true });
  return toRgb(new Uint8Array(data), info.width, info.height, info.channels);
}

function noise(width: number, height: number, channels: number, seed: number): Buffer {
  let s = seed;
  return Buffer.from(Array.from({ length: width * height * channels }, (_, i) => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (i % 7 === 0 ? s >>> 24 : (i * 13 + (s >>> 28))) & 255; // noise and smooth runs: every filter gets picked
  }));
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

/** A PNG written by hand: RGB rows with the given filter byte per row, IDAT split in `parts`, extra chunks before IDAT. */
function handmade(width: number, height: number, filters: number[], parts: number, extra: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const pixels = noise(width, height, 3, 9);
  const raw = Buffer.concat(Array.from({ length: height }, (_, y) => Buffer.concat([Buffer.from([filters[y % filters.length]]), pixels.subarray(y * width * 3, (y + 1) * width * 3)])));
  const z = deflateSync(raw);
  const size = Math.ceil(z.length / parts);
  const idats = Array.from({ length: parts }, (_, k) => chunk('IDAT', z.subarray(k * size, (k + 1) * size)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), ...extra, ...idats, chunk('IEND', new Uint8Array(0))]);
}

describe('the PNG fast path', () => {
  it("gives sharp's pixels for the sample scenes and for grey, RGB and palette files with every filter", async () => {
    const files: Uint8Array[] = readdirSync(join(ROOT, 'assets/samples')).filter((f) => f.endsWith('.png')).map((f) => new Uint8Array(readFileSync(join(ROOT, 'assets/samples', f))));
    for (const [w, h] of [[1, 1], [3, 5], [64, 64], [97, 31]]) {
      files.push(await sharp(noise(w, h, 3, w), { raw: { width: w, height: h, channels: 3 } }).png({ adaptiveFiltering: true, compressionLevel: 9 }).toBuffer());
      files.push(await sharp(noise(w, h, 1, h), { raw: { width: w, height: h, channels: 1 } }).png({ adaptiveFiltering: true }).toBuffer());
      files.push(await sharp(noise(w, h, 3, 5), { raw: { width: w, height: h, channels: 3 } }).png({ palette: true, colours: 256, dither: 0 }).toBuffer());
      for (const filter of [0, 1, 2, 3, 4]) files.push(handmade(w, h, [filter], 1));
      files.push(handmade(w, h, [4, 3, 2, 1, 0], 3, [chunk('tEXt', Buffer.from('Comment\0made here')), chunk('pHYs', Buffer.alloc(9))]));
    }
    let taken = 0;
    for (const bytes of files) {
      const fast = decodeSimplePng(bytes, LIMIT);
      if (!fast) continue; // e.g. a palette sharp wrote with fewer than 8 bits per index
      taken++;
      expect(fast).toEqual(await viaSharp(bytes));
      expect(simplePngHeader(bytes)).toEqual({ width: fast.width, height: fast.height });
      expect(await decodeImage(bytes, { maxPixels: LIMIT })).toEqual(fast);
    }
    expect(taken).toBeGreaterThanOrEqual(files.length - 4);
  });

  it('leaves to sharp what it does not take, and decodeImage still decodes it or names the fault', async () => {
    const rgb = handmade(16, 8, [1, 4], 1);
    const rgba = await sharp(noise(8, 8, 4, 1), { raw: { width: 8, height: 8, channels: 4 } }).png().toBuffer();
    const sixteen = await sharp(noise(8, 8, 3, 2), { raw: { width: 8, height: 8, channels: 3 } }).png().toColourspace('rgb16').toBuffer();
    const interlaced = await sharp(noise(16, 16, 3, 3), { raw: { width: 16, height: 16, channels: 3 } }).png({ progressive: true }).toBuffer();
    const gamma = handmade(16, 8, [0], 1, [chunk('gAMA', Buffer.from([0, 0, 0xb1, 0x8f]))]);
    const badCrc = Buffer.from(rgb);
    badCrc[badCrc.length - 20] ^= 1; // inside IDAT's data: its CRC no longer matches
    const truncated = rgb.subarray(0, rgb.length - 12);
    const padded = Buffer.concat([rgb, Buffer.from([0])]);
    for (const bytes of [rgba, sixteen, interlaced, gamma, badCrc, truncated]) expect(decodeSimplePng(bytes, LIMIT)).toBeUndefined();
    expect(decodeSimplePng(padded, LIMIT)).toEqual(await viaSharp(padded)); // bytes after IEND are ignored, by sharp too
    expect(decodeSimplePng(rgb, 16 * 8 - 1)).toBeUndefined(); // over the pixel limit: sharp gives IMAGE_TOO_LARGE
    for (const bytes of [rgba, sixteen, interlaced, gamma]) expect(await decodeImage(bytes, { maxPixels: LIMIT })).toEqual(await viaSharp(bytes));
    await expect(decodeImage(badCrc, { maxPixels: LIMIT })).rejects.toMatchObject({ code: 'BAD_IMAGE' });
    // sharp takes a file without IEND, as before: the fast path only declines it.
    expect(await decodeImage(truncated, { maxPixels: LIMIT })).toEqual(await viaSharp(truncated));
    await expect(decodeImage(rgb, { maxPixels: 100 })).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
  });

  it("probes a simple PNG's size from its chunks, as sharp's metadata gives it", async () => {
    const rgb = handmade(37, 11, [2], 2);
    const meta = await sharp(rgb).metadata();
    expect(await probeImage(rgb, LIMIT)).toEqual({ format: 'png', width: meta.width, height: meta.height, hasAlpha: false });
    await expect(probeImage(rgb, 100)).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
  });
});
