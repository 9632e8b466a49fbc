// Benchmarks start Iris with npm start's environment: the start script's `NAME=${NAME:-value}`
// prefixes, read from package.json, with a value already in the environment winning.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { npmStartEnv } from '../../bench/start-env.ts';
import { ROOT } from '../helpers.ts';

describe('npm start environment', () => {
  const saved = process.env.MALLOC_MMAP_THRESHOLD_;
  afterEach(() => {
    if (saved === undefined) delete process.env.MALLOC_MMAP_THRESHOLD_;
    else process.env.MALLOC_MMAP_THRESHOLD_ = saved;
  });

  it('reads the start script: glibc mmap threshold 4 MB, unless the environment sets one', () => {
    delete process.env.MALLOC_MMAP_THRESHOLD_;
    expect(npmStartEnv()).toEqual({ MALLOC_MMAP_THRESHOLD_: '4194304' });
    process.env.MALLOC_MMAP_THRESHOLD_ = '65536';
    expect(npmStartEnv()).toEqual({ MALLOC_MMAP_THRESHOLD_: '65536' });
  });

  it('is what the shell gives the server when npm runs the script', () => {
    const env = { ...process.env };
    delete env.MALLOC_MMAP_THRESHOLD_;
    // The script's prefix as sh expands it, without starting the server.
    const script = JSON.parse(execFileSync('node', ['-p', 'JSON.stringify(require("./package.json").scripts.start)'], { cwd: ROOT, encoding: 'utf8' })) as string;
    const shown = execFileSync('sh', ['-c', script.replace(/ node bin\/serve\.js$/, ' sh -c \'echo $MALLOC_MMAP_THRESHOLD_\'')], { env, encoding: 'utf8' }).trim();
    expect(shown).toBe('4194304');
  });
});
