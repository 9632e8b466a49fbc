// Images made on the spot with sharp: a shapes-world-like scene in several formats.
import sharp from 'sharp';

export async function scenePng(size = 64): Promise<Buffer> {
  const square = Buffer.from(`<svg width="${size / 3}" height="${size / 3}"><rect width="100%" height="100%" fill="rgb(40,70,220)"/></svg>`);
  return sharp({ create: { width: size, height: size, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite([{ input: square, left: size / 4, top: size / 4 }])
    .png()
    .toBuffer();
}

export async function sceneAs(format: 'jpeg' | 'webp', size = 64): Promise<Buffer> {
  return sharp(await scenePng(size))[format]({ quality: 80 }).toBuffer();
}

/** A 2-pixel BMP: a real image in a format the service does not take. */
export function tinyBmp(): Buffer {
  const b = Buffer.alloc(62);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(62, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(2, 18);
  b.writeInt32LE(1, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  return b;
}
