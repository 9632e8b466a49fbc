// npm run bench:image [-- --images DIR --n 200 --rounds 7 --parallel 1,8]
// CPU per image of the image path, in process CPU time (all threads: sharp decodes on
// libuv's pool and libvips' workers), so it holds on a busy machine. Two variants run
// interleaved, round by round, in alternating order, on the same images:
//   iris       what the server does per new image: the intake probe (one header read),
//              the content hash, decodeImage (one sharp pipeline), preprocessImage (JS
//              resize + normalise in one pass, vision/resample.ts)
//   two-sharp  the path this replaced, which is also transformers.js's in Node: the probe,
//              a second metadata read before decoding, the decode, a second sharp
//              pipeline for the affine resize, a normalise loop, the hash twice
// plus the parts of `iris` alone. Prints medians [min–max] of the rounds and the ratio.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { readModelFolder } from '../src/model/folder.ts';
import { DEFAULT_MODEL_DIR } from '../src/model/load.ts';
import { contentHash } from '../vision/embedding-cache.ts';
import { decodeImage, toRgb, type RgbImage } from '../vision/image.ts';
import { preprocessImage, type PreprocessorConfig } from '../vision/preprocess.ts';
import { probeImage } from '../vision/probe.ts';
import { ROOT } from '../test/helpers.ts';

const { values } = parseArgs({ options: { images: { type: 'string' }, n: { type: 'string' }, rounds: { type: 'string' }, parallel: { type: 'string' }, model: { type: 'string' } } });
const n = Number(values.n ?? 200);
const rounds = Number(values.rounds ?? 7);
const levels = (values.parallel ?? '1,8').split(',').map(Number);
const MAX_PIXELS = 40_000_000;

function imageFiles(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return imageFiles(path);
    return /\.(png|jpe?g|webp|gif)$/i.test(name) ? [path] : [];
  });
}

const files = imageFiles(values.images ?? join(ROOT, 'assets/samples'));
if (files.length === 0) throw new Error('no images found');
// Fresh buffers per use, as requests bring them (the hash is remembered per buffer).
// Up to 400 images spread evenly over the folder (all its formats and sizes).
const picked = files.filter((_, i) => i % Math.ceil(files.length / 400) === 0);
const encoded = picked.map((f) => readFileSync(f));
const bytesOf = (i: number): Uint8Array => new Uint8Array(encoded[i % encoded.length]);
const config = (await readModelFolder(values.model ?? DEFAULT_MODEL_DIR)).preprocessor;
const limits = { maxPixels: MAX_PIXELS };

/** The path before: as decodeImage, preprocess.ts and the loader ran it with two sharp pipelines. */
async function twoSharp(bytes: Uint8Array, pre: PreprocessorConfig): Promise<Float32Array> {
  await probeImage(bytes, MAX_PIXELS); // intake
  createHash('sha256').update(bytes).digest('hex'); // routing key
  createHash('sha256').update(bytes).digest('hex'); // loader
  const meta = await probeImage(bytes, MAX_PIXELS); // decodeImage's own probe
  let img = sharp(bytes, { limitInputPixels: MAX_PIXELS, failOn: 'error' }).rotate();
  if (meta.hasAlpha) img = img.flatten({ background: { r: 255, g: 255, b: 255 } });
  const decoded = await img.raw().toBuffer({ resolveWithObject: true });
  const rgb = toRgb(new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength), decoded.info.width, decoded.info.height, decoded.info.channels);
  const interpolator = ({ 0: 'nearest', 2: 'bilinear', 3: 'bicubic' } as const)[pre.resample];
  const resized = await sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
    .affine([pre.width / rgb.width, 0, 0, pre.height / rgb.height], { interpolator })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return normalise({ data: new Uint8Array(resized.data), width: resized.info.width, height: resized.info.height }, pre);
}

function normalise(image: RgbImage, pre: PreprocessorConfig): Float32Array {
  const plane = image.width * image.height;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      let v = image.data[p * 3 + c];
      if (pre.doRescale) v = Math.fround(pre.rescaleFactor * v);
      if (pre.doNormalize) v = Math.fround((v - pre.mean[c]) / pre.std[c]);
      out[c * plane + p] = v;
    }
  }
  return out;
}

async function iris(bytes: Uint8Array): Promise<Float32Array> {
  await probeImage(bytes, MAX_PIXELS);
  contentHash(bytes);
  contentHash(bytes);
  return preprocessImage(await decodeImage(bytes, limits), config);
}

const decodedOnce = await Promise.all(encoded.map((b) => decodeImage(new Uint8Array(b), limits)));

const variants: Record<string, (i: number) => Promise<unknown>> = {
  'two-sharp (before)': (i) => twoSharp(bytesOf(i), config),
  'iris (one decode, JS resample)': (i) => iris(bytesOf(i)),
  '  of which: probe': (i) => probeImage(bytesOf(i), MAX_PIXELS),
  '  of which: decodeImage': (i) => decodeImage(bytesOf(i), limits),
  '  of which: preprocessImage': async (i) => preprocessImage(decodedOnce[i % decodedOnce.length], config),
  '  of which: contentHash': async (i) => contentHash(bytesOf(i)),
};

// Both variants give the same pixel_values (the parity tests check this in depth).
for (let i = 0; i < encoded.length; i += Math.max(1, Math.floor(encoded.length / 30))) {
  const [a, b] = await Promise.all([twoSharp(bytesOf(i), config), iris(bytesOf(i))]);
  if (!Buffer.from(a.buffer).equals(Buffer.from(b.buffer))) throw new Error(`${picked[i]}: the two paths disagree`);
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function perImage(fn: (i: number) => Promise<unknown>, parallel: number): Promise<number> {
  const c0 = cpuMs();
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < n) await fn(next++);
  }));
  return (cpuMs() - c0) / n;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`${encoded.length} images from ${values.images ?? 'assets/samples'} → ${config.width}x${config.height}; ${n} images per round, ${rounds} rounds; sharp.concurrency() = ${sharp.concurrency()}`);
for (const parallel of levels) {
  const results: Record<string, number[]> = {};
  const names = Object.keys(variants);
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) (results[name] ??= []).push(await perImage(variants[name], parallel));
  }
  console.log(`\n${parallel} at a time: process CPU ms per image, median [min–max]`);
  for (const [name, xs] of Object.entries(results)) console.log(`  ${name.padEnd(34)} ${median(xs).toFixed(3)} [${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}]`);
  const before = results['two-sharp (before)'];
  const after = results['iris (one decode, JS resample)'];
  const ratios = before.map((b, i) => b / after[i]);
  console.log(`  before / after, per round: median ${median(ratios).toFixed(2)}× [${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}]`);
}
