// Small helpers the benchmarks share.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export async function loadImages(dir: string, names: string[]): Promise<Uint8Array[]> {
  return Promise.all(names.map(async (n) => new Uint8Array(await readFile(join(dir, n)))));
}
