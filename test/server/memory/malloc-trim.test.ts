// The malloc_trim addon: built by the install step (bin/build-native.mjs), it returns the
// free pages inside malloc's heap to the system; without a compiler the install goes on
// and Iris runs without it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMallocTrim, MALLOC_TRIM_ADDON } from '../../../src/server/memory/malloc-trim.ts';
import { ROOT } from '../../helpers.ts';

const MB = 1024 * 1024;

describe('native/malloc-trim.node', () => {
  it('was built by npm ci (the install step) and loads', () => {
    expect(existsSync(MALLOC_TRIM_ADDON), 'native/malloc-trim.node is missing: npm run build:native').toBe(true);
    expect(loadMallocTrim()).toBeTypeOf('function');
  });

  it('hands free pages in the middle of malloc\'s heap back to the system, which free() keeps', () => {
    // 2,000 buffers of 64 KB (under glibc's mmap threshold: they live in the heap), every
    // other one kept, so the freed half lies in holes between live ones.
    const script = `
      const { trim } = require(${JSON.stringify(MALLOC_TRIM_ADDON)});
      const rss = () => process.memoryUsage.rss();
      let all = Array.from({ length: 2000 }, () => Buffer.alloc(64 * 1024, 1));
      const kept = all.filter((_, i) => i % 2 === 0);
      all = undefined;
      const settle = () => new Promise((r) => setTimeout(r, 200));
      (async () => {
        gc(); await settle(); gc(); await settle();
        const freed = rss();
        const released = await trim();
        console.log(JSON.stringify({ freed, trimmed: rss(), released, kept: kept.length }));
      })();`;
    const run = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', env: { ...process.env, MALLOC_MMAP_THRESHOLD_: String(4 * MB) } });
    expect(run.stderr).toBe('');
    const { freed, trimmed, released, kept } = JSON.parse(run.stdout) as { freed: number; trimmed: number; released: boolean; kept: number };
    expect(kept).toBe(1000);
    expect(released).toBe(true);
    // About 62 MB were freed; measured: 57-58 MB go back.
    expect(freed - trimmed).toBeGreaterThan(40 * MB);
  });

  it('loadMallocTrim: undefined for a missing file or one that is not the addon', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iris-trim-'));
    try {
      expect(loadMallocTrim(join(dir, 'missing.node'))).toBeUndefined();
      writeFileSync(join(dir, 'broken.node'), 'not a shared object');
      expect(loadMallocTrim(join(dir, 'broken.node'))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bin/build-native.mjs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iris-build-native-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const build = (out: string, env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [join(ROOT, 'bin/build-native.mjs'), '--out', out], { encoding: 'utf8', env: { ...process.env, ...env } });

  it('builds the addon with the C compiler and Node\'s headers', () => {
    const out = join(dir, 'built.node');
    const run = build(out);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^iris: built /);
    expect(loadMallocTrim(out)).toBeTypeOf('function');
    expect(existsSync(`${out}.partial`)).toBe(false);
  });

  it('without a C compiler: says so, leaves no file (not even an older build) and does not fail the install', () => {
    const out = join(dir, 'stale.node');
    writeFileSync(out, 'an older build');
    const run = build(out, { CC: join(dir, 'no-such-compiler') });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/not built \(no C compiler .*\); Iris runs without it/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });

  it('a compiler that fails: says so and does not fail the install', () => {
    const run = build(join(dir, 'failed.node'), { CC: 'false' });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/not built \(false failed\)/);
    expect(existsSync(join(dir, 'failed.node'))).toBe(false);
  });
});
