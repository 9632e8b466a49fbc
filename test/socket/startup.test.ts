// `npm start` with models that fail to load: one broken model among several is reported
// FAILED while the others serve; a server whose only model fails exits 1 with the message.
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../helpers.ts';
import { startIrisProcess, startReadyIris, type IrisProcess } from './process.ts';

describe('npm start with a model that fails to load', () => {
  let root: string;
  let bad: string;
  const procs: IrisProcess[] = [];
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'iris-startup-'));
    bad = join(root, 'bad');
    await mkdir(join(bad, 'onnx'), { recursive: true });
    for (const entry of await readdir(FIXTURES.encoderDecoder)) if (entry !== 'onnx') await symlink(join(FIXTURES.encoderDecoder, entry), join(bad, entry));
    for (const file of await readdir(join(FIXTURES.encoderDecoder, 'onnx'))) {
      const bytes = await readFile(join(FIXTURES.encoderDecoder, 'onnx', file));
      await writeFile(join(bad, 'onnx', file), file.startsWith('decoder') ? bytes.subarray(0, 512) : bytes);
    }
  });
  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });

  it('serves the others, reporting the broken one FAILED', async () => {
    const iris = await startReadyIris(['--model', 'tiny=assets/models/tiny-random', '--model', `bad=${bad}`]);
    procs.push(iris);
    expect(iris.output()).toMatch(/iris: model bad failed to load: /);
    expect(iris.output()).toMatch(/iris: models ready \(tiny\); failed: bad/);
    const ready = await fetch(iris.url.replace('/graphql', '/ready'));
    expect(ready.status).toBe(200);
    expect((await ready.json()).models.map((m: { state: string }) => m.state)).toEqual(['ready', 'failed']);
    iris.child.kill('SIGTERM');
    expect(await iris.exited).toBe(0);
  }, 120_000);

  it('exits 1 with the message when its only model fails', async () => {
    const iris = startIrisProcess(['--model', `bad=${bad}`]);
    procs.push(iris);
    expect(await iris.exited).toBe(1);
    expect(iris.output()).toMatch(/iris: model bad failed to load: .+\niris: no model could be loaded/);
  }, 120_000);
});
