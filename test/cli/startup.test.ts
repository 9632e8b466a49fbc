// `iris --help` and `npm start` start fast: src/cli.ts reaches the commands (and onnxruntime-node and sharp,
// which take about a second to load) only through a dynamic import, and bin/iris.js runs
// the compiled dist/ only while it is newer than every source.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ROOT } from '../helpers.ts';

/** Files reached from `file` through static imports only, and the packages they import. */
function staticClosure(file: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (f: string): void => {
    if (files.has(f)) return;
    files.add(f);
    const text = readFileSync(join(ROOT, f), 'utf8');
    for (const m of text.matchAll(/^\s*import\s+(?:type\s+)?(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]/gm)) {
      if (/^\s*import\s+type\s/.test(m[0])) continue; // erased at compile time
      const spec = m[1];
      if (spec.startsWith('.')) visit(relative(ROOT, resolve(ROOT, dirname(f), spec)));
      else packages.add(spec);
    }
  };
  visit(file);
  return { files, packages };
}

describe('CLI start-up', () => {
  it('loads neither onnxruntime-node nor sharp before a command runs', () => {
    const { files, packages } = staticClosure('src/cli.ts');
    expect([...packages].filter((p) => /onnxruntime|sharp|@huggingface/.test(p))).toEqual([]);
    expect(files.has('src/cli/commands.ts')).toBe(false);
    // The control: the commands module does reach them.
    expect([...staticClosure('src/cli/commands.ts').packages]).toEqual(expect.arrayContaining(['onnxruntime-node']));
  });

  it('prints help through bin/iris.js, from dist/ or the sources', () => {
    for (const env of [{}, { IRIS_TSX: '1' }]) {
      const out = execFileSync(process.execPath, [join(ROOT, 'bin/iris.js'), '--help'], { env: { ...process.env, ...env }, encoding: 'utf8' });
      expect(out).toMatch(/^usage: iris <command>/);
    }
  });

  it('starts the server through bin/serve.js (npm start), from dist/ or the sources', async () => {
    for (const env of [{}, { IRIS_TSX: '1' }]) {
      const child = spawn(process.execPath, [join(ROOT, 'bin/serve.js'), '--port', '0', '--access-log', 'off', '--model', 'tiny=assets/models/tiny-random'], { cwd: ROOT, env: { ...process.env, ...env } });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await vi.waitFor(() => expect(out).toMatch(/iris: models ready \(tiny\)/), { timeout: 30_000, interval: 50 });
      expect(out).toMatch(/iris: serving http:\/\/127\.0\.0\.1:\d+\/graphql/);
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('keeps serving when its stdout goes away (the access log stops, the server does not)', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/server.ts'), '--port', '0', '--model', 'tiny=assets/models/tiny-random'], { cwd: ROOT });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await vi.waitFor(() => expect(out).toMatch(/iris: models ready \(tiny\)/), { timeout: 30_000, interval: 50 });
      const url = /iris: serving (\S+)/.exec(out)![1];
      child.stdout.destroy(); // the reader of the pipe is gone: the next access-log write gets EPIPE
      for (let i = 0; i < 3; i++) {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ __typename }' }) });
        expect(res.status).toBe(200);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(child.exitCode, err).toBeNull();
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});
