// The environment `npm start` gives the server (the `start` script's `NAME=${NAME:-value}`
// prefixes in package.json, e.g. glibc's mmap threshold), so benchmarks start Iris as users do.
// A variable already set in this process's environment wins, as it does in the script.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../test/helpers.ts';

export function npmStartEnv(): Record<string, string> {
  const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start;
  const env: Record<string, string> = {};
  for (const m of script.matchAll(/(\w+)=\$\{\1:-([^}]*)\}/g)) env[m[1]] = process.env[m[1]] ?? m[2];
  return env;
}
