// Decoding untrusted image bytes: orientation, alpha, and each failure's code.
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../vision/image.ts';
import { syntheticImage } from '../helpers.ts';

const LIMITS = { maxPixels: 1_000_000 };

function solid(width: number, height: number, channels: 3 | 4, value: number[]): Sharp {
  const px = new Uint8Array(width * height * channels);
  for (let i = 0; i < px.length; i++) px[i] = value[i % channels];
  return sharp(px, { raw: { width, height, channels } });
}

describe('decodeImage', () => {
  it('reads PNG, JPEG, WebP, GIF, TIFF and AVIF', async () => {
    const base = () => solid(40, 30, 3, [200, 30, 30]);
    const encoded = {
      png: await base().png().toBuffer(),
      jpeg: await base().jpeg({ quality: 90 }).toBuffer(),
      webp: await base().webp({ lossless: true }).toBuffer(),
      gif: await base().gif().toBuffer(),
      tiff: await base().tiff().toBuffer(),
      avif: await base().avif({ lossless: true }).toBuffer(),
    };
    for (const [format, bytes] of Object.entries(encoded)) {
      const img = await decodeImage(new Uint8Array(bytes), LIMITS);
      expect([format, img.width, img.height, img.data.length]).toEqual([format, 40, 30, 40 * 30 * 3]);
      expect(Math.abs(img.data[0] - 200)).toBeLessThan(16);
    }
  });

  it('applies EXIF orientation', async () => {
    const bytes = await solid(40, 20, 3, [10, 200, 10]).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const img = await decodeImage(new Uint8Array(bytes), LIMITS);
    expect([img.width, img.height]).toEqual([20, 40]);
  });

  it('flattens transparency onto white and keeps opaque pixels exact', async () => {
    const clear = await decodeImage(new Uint8Array(await solid(8, 8, 4, [0, 0, 0, 0]).png().toBuffer()), LIMITS);
    expect(Array.from(clear.data.subarray(0, 3))).toEqual([255, 255, 255]);
    const opaque = await decodeImage(new Uint8Array(await solid(8, 8, 4, [12, 34, 56, 255]).png().toBuffer()), LIMITS);
    expect(Array.from(opaque.data.subarray(0, 3))).toEqual([12, 34, 56]);
  });

  it('names each failure with a stable code', async () => {
    const png = await syntheticImage(64, 64, 1);
    await expect(decodeImage(new Uint8Array(0), LIMITS)).rejects.toMatchObject({ code: 'BAD_IMAGE' });
    await expect(decodeImage(new TextEncoder().encode('not an image at all'), LIMITS)).rejects.toMatchObject({ code: 'BAD_IMAGE' });
    await expect(decodeImage(png.subarray(0, 120), LIMITS)).rejects.toMatchObject({ code: 'BAD_IMAGE' });
    await expect(decodeImage(png, { maxPixels: 64 * 64 - 1 })).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
    const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    await expect(decodeImage(svg, LIMITS)).rejects.toMatchObject({ code: 'UNSUPPORTED_IMAGE_FORMAT' });
    // HEIF: refused here as at the server's intake (one probe decides for both)
    const heif = Uint8Array.from([0, 0, 0, 24, ...new TextEncoder().encode('ftypheic'), 0, 0, 0, 0, ...new TextEncoder().encode('mif1heic')]);
    await expect(decodeImage(heif, LIMITS)).rejects.toMatchObject({ code: 'UNSUPPORTED_IMAGE_FORMAT' });
  });

  it('keeps the codes for broken bytes of each format, decoded without a separate metadata read', async () => {
    const base = solid(48, 32, 3, [90, 120, 200]);
    for (const bytes of [await base.clone().jpeg().toBuffer(), await base.clone().webp().toBuffer(), await base.clone().gif().toBuffer()]) {
      await expect(decodeImage(new Uint8Array(bytes.subarray(0, 40)), LIMITS)).rejects.toMatchObject({ code: 'BAD_IMAGE' });
    }
    const bmp = Uint8Array.from([0x42, 0x4d, ...new Array(60).fill(0)]);
    await expect(decodeImage(bmp, LIMITS)).rejects.toMatchObject({ code: 'UNSUPPORTED_IMAGE_FORMAT' });
    const png = new Uint8Array(await base.clone().png().toBuffer());
    await expect(decodeImage(png, { maxPixels: 48 * 32 - 1 })).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE', message: expect.stringContaining(`${48 * 32 - 1} pixels`) });
    expect((await decodeImage(png, { maxPixels: 48 * 32 })).width).toBe(48);
  });

  it('rejects a decompression bomb from its header, before decoding', async () => {
    const bomb = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#fff' } }).png({ compressionLevel: 9 }).toBuffer();
    expect(bomb.length).toBeLessThan(200_000); // tiny file, 16 Mpx
    await expect(decodeImage(new Uint8Array(bomb), { maxPixels: 1_000_000 })).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
  });
});
