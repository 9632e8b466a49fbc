// Shared test helpers: fixture paths and parity cases turned into PNG bytes.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = {
  encoderDecoder: join(ROOT, 'assets/models/tiny-random'),
  gpt2: join(ROOT, 'assets/models/tiny-random-gpt2'),
} as const;

/** The shipped model, once its training run has exported it. */
export const SHIPPED_MODEL = join(ROOT, 'assets/models/shapes-base');
export const isShippedModelPresent = existsSync(join(SHIPPED_MODEL, 'onnx/decoder_model_merged.onnx'));
/** The shipped model's draft decoder for speculative decoding. */
export const SHIPPED_DRAFT = join(SHIPPED_MODEL, 'draft');

/** Poll a started server's /ready until it answers 200 (its models are loaded). */
export async function waitForReady(graphqlUrl: string, timeoutMs = 30_000): Promise<void> {
  const ready = graphqlUrl.replace('/graphql', '/ready');
  for (const deadline = Date.now() + timeoutMs; (await fetch(ready)).status !== 200; ) {
    if (Date.now() > deadline) throw new Error(`${ready} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Render `scenes` held-out scenes (the test seed the training never saw) into `dir`, as `npm run train` does,
 * followed by `oodImages` out-of-domain lines (none by default; `npm run train` writes 600). */
export function writeHeldOut(dir: string, scenes: number, oodImages = 0): void {
  execFileSync('/usr/bin/python3', ['-c', `import data; data.write_folder(${JSON.stringify(dir)}, 'test', ${scenes}, ood_count=${oodImages})`],
    { cwd: join(ROOT, 'training'), stdio: 'ignore', timeout: 240_000 });
}

/** Folders the parity tests cover: the fixtures always, the shipped model when present. */
export const PARITY_FOLDERS: Record<string, string> = isShippedModelPresent ? { ...FIXTURES, shipped: SHIPPED_MODEL } : { ...FIXTURES };

export interface ParityCase {
  image: Uint8Array; // HWC uint8 at image_size
  promptIds: number[];
  greedyIds: number[];
  firstLogits: number[];
}

export function readParity(dir: string): { imageSize: number; eosTokenId: number; cases: ParityCase[] } {
  const raw = JSON.parse(readFileSync(join(dir, 'parity.json'), 'utf8')) as {
    image_size: number;
    eos_token_id: number;
    cases: { image_uint8_hwc: string; prompt_ids: number[]; greedy_ids: number[]; first_logits: number[] }[];
  };
  return {
    imageSize: raw.image_size,
    eosTokenId: raw.eos_token_id,
    cases: raw.cases.map((c) => ({
      image: new Uint8Array(Buffer.from(c.image_uint8_hwc, 'base64')),
      promptIds: c.prompt_ids,
      greedyIds: c.greedy_ids,
      firstLogits: c.first_logits,
    })),
  };
}

/** Raw HWC pixels → PNG bytes (lossless, so the pipeline sees exactly these pixels). */
export async function pngFromPixels(pixels: Uint8Array, size: number): Promise<Uint8Array> {
  return new Uint8Array(await sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer());
}

/** A deterministic test scene: a solid background with two filled rectangles. */
export async function syntheticImage(width: number, height: number, seed: number, format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<Uint8Array> {
  const px = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const isA = x > width * 0.1 && x < width * 0.4 && y > height * 0.2 && y < height * 0.5;
      const isB = x > width * 0.55 && x < width * 0.9 && y > height * 0.5 && y < height * 0.85;
      px[i] = isA ? 220 : isB ? 40 : (seed * 37) % 256;
      px[i + 1] = isA ? 30 : isB ? 70 : (seed * 37) % 256;
      px[i + 2] = isA ? 30 : isB ? 220 : (seed * 37) % 256;
    }
  }
  const img = sharp(px, { raw: { width, height, channels: 3 } });
  const out = format === 'png' ? img.png() : format === 'jpeg' ? img.jpeg({ quality: 80 }) : img.webp({ quality: 80 });
  return new Uint8Array(await out.toBuffer());
}
