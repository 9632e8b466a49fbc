// Where a benchmark writes: bench/results/ (committed, the figures the README quotes) only
// when asked with IRIS_BENCH_UPDATE=1; otherwise bench/results/local/, which git ignores,
// so running a benchmark leaves the tree as it was.
import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from '../test/helpers.ts';

export function resultsDir(): string {
  const dir = join(ROOT, 'bench/results', process.env.IRIS_BENCH_UPDATE === '1' ? '' : 'local');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The path as the repository names it, for the "wrote ..." line. */
export function shown(path: string): string {
  return relative(ROOT, path);
}
