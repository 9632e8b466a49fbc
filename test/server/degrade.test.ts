// Degrade, don't die: an optional part that fails (a draft model) turns that feature off
// for its model, and a model that fails to load is FAILED while the others serve. Real
// engines on tiny-random, with broken copies made in a temporary folder.
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfig, engineConfigOf, type ConfigInput } from '../../src/config/config.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { createIrisApp, type IrisApp } from '../../src/server/app.ts';
import { createEngineLoader } from '../../src/server/load-models.ts';
import { FIXTURES } from '../helpers.ts';
import { codes, gql } from '../api/support/app.ts';
import { scenePng } from '../api/support/images.ts';

const CAPTION = 'query($i: ImageInput!, $m: String, $o: GenerationOptions) { caption(image: $i, model: $m, options: $o) { text } }';

/** tiny-random's files linked into a new folder; `onnx/` copied with the given file truncated, and optionally a draft/ whose decoder is truncated. */
async function brokenCopy(root: string, name: string, options: { truncate?: string; brokenDraft?: boolean; brokenHeads?: boolean }): Promise<string> {
  const dir = join(root, name);
  await mkdir(join(dir, 'onnx'), { recursive: true });
  for (const entry of await readdir(FIXTURES.encoderDecoder)) {
    if (entry !== 'onnx') await symlink(join(FIXTURES.encoderDecoder, entry), join(dir, entry));
  }
  for (const file of await readdir(join(FIXTURES.encoderDecoder, 'onnx'))) {
    const bytes = await readFile(join(FIXTURES.encoderDecoder, 'onnx', file));
    await writeFile(join(dir, 'onnx', file), file === options.truncate ? bytes.subarray(0, 512) : bytes);
  }
  if (options.brokenDraft) {
    await mkdir(join(dir, 'draft', 'onnx'), { recursive: true });
    for (const entry of await readdir(FIXTURES.encoderDecoder)) {
      if (entry !== 'onnx') await symlink(join(FIXTURES.encoderDecoder, entry), join(dir, 'draft', entry));
    }
    const decoder = await readFile(join(FIXTURES.encoderDecoder, 'onnx', 'decoder_model_merged.onnx'));
    await writeFile(join(dir, 'draft', 'onnx', 'decoder_model_merged.onnx'), decoder.subarray(0, decoder.length / 3));
  }
  if (options.brokenHeads) {
    await mkdir(join(dir, 'medusa', 'onnx'), { recursive: true });
    const decoder = await readFile(join(FIXTURES.encoderDecoder, 'onnx', 'decoder_model_merged.onnx'));
    await writeFile(join(dir, 'medusa', 'onnx', 'decoder_model_merged.onnx'), decoder.subarray(0, decoder.length / 3));
  }
  return dir;
}

async function serve(specs: Array<{ id: string; dir: string }>, input: ConfigInput = {}) {
  const config = createConfig({ ...input, models: { ...input.models, specs, imageWorkers: 0 } });
  const engines: Engine[] = [];
  const warnings: string[] = [];
  const load = createEngineLoader({ engine: engineConfigOf(config), onEngine: (_, e) => engines.push(e), warn: (m) => warnings.push(m) });
  const app = createIrisApp({ config, load, logUnexpected: () => undefined });
  await app.registry.settled;
  return { app, warnings, release: () => Promise.all(engines.map((e) => e.release())) };
}

async function ready(app: IrisApp) {
  const res = await app.yoga.fetch('http://iris.test/ready');
  return { status: res.status, body: (await res.json()) as { ready: boolean; models: Array<{ id: string; state: string; detail?: string }> } };
}

describe('degrade, don\'t die', () => {
  let root: string;
  let i: { base64: string };
  const releases: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'iris-degrade-'));
    i = { base64: (await scenePng()).toString('base64') };
  });
  afterAll(async () => {
    await Promise.all(releases.map((r) => r()));
    await rm(root, { recursive: true, force: true });
  });

  it.each(['off', 'draft'] as const)('a truncated draft/ decoder (speculative %s by default) turns draft speculation off for that model, with a warning and a detail', async (speculative) => {
    const dir = await brokenCopy(root, `draft-${speculative}`, { brokenDraft: true });
    const { app, warnings, release } = await serve([{ id: 'tiny', dir }], { models: { speculative } });
    releases.push(release);
    const r = await ready(app);
    expect(r.status).toBe(200);
    expect(r.body.models[0]).toMatchObject({ id: 'tiny', state: 'ready', detail: expect.stringMatching(/speculative 'draft' is off: draft\/ failed to load/) });
    expect(warnings).toEqual([expect.stringMatching(/^model tiny: speculative 'draft' is off/)]);
    const models = await gql(app, '{ models { id state detail } }');
    expect(models.body.data?.models).toEqual([{ id: 'tiny', state: 'READY', detail: r.body.models[0].detail }]);
    const plain = await gql(app, CAPTION, { i, o: { maxNewTokens: 4 } });
    expect(plain.body.errors).toBeUndefined();
    expect(codes(await gql(app, CAPTION, { i, o: { maxNewTokens: 4, speculative: 'DRAFT' } }))).toEqual(['INVALID_OPTIONS']);
  });

  it.each(['off', 'medusa'] as const)('a truncated medusa/ decoder (speculative %s by default) turns Medusa speculation off for that model, with a warning and a detail', async (speculative) => {
    const dir = await brokenCopy(root, `medusa-${speculative}`, { brokenHeads: true });
    const { app, warnings, release } = await serve([{ id: 'tiny', dir }], { models: { speculative } });
    releases.push(release);
    const r = await ready(app);
    expect(r.status).toBe(200);
    expect(r.body.models[0]).toMatchObject({ id: 'tiny', state: 'ready', detail: expect.stringMatching(/speculative 'medusa' is off: medusa\/ failed to load/) });
    expect(warnings).toEqual([expect.stringMatching(/^model tiny: speculative 'medusa' is off/)]);
    expect((await gql(app, CAPTION, { i, o: { maxNewTokens: 4 } })).body.errors).toBeUndefined();
    expect(codes(await gql(app, CAPTION, { i, o: { maxNewTokens: 4, speculative: 'MEDUSA' } }))).toEqual(['INVALID_OPTIONS']);
  });

  it('with several models, one that fails to load is FAILED (MODEL_UNAVAILABLE) while the others serve', async () => {
    const bad = await brokenCopy(root, 'bad-decoder', { truncate: 'decoder_model_merged.onnx' });
    const { app, release } = await serve([{ id: 'tiny', dir: FIXTURES.encoderDecoder }, { id: 'bad', dir: bad }]);
    releases.push(release);
    const r = await ready(app);
    expect(r.status).toBe(200);
    expect(r.body.models.map((m) => [m.id, m.state])).toEqual([['tiny', 'ready'], ['bad', 'failed']]);
    expect(r.body.models[1].detail).toBeTruthy();
    expect((await gql(app, CAPTION, { i, o: { maxNewTokens: 4 } })).body.errors).toBeUndefined();
    const refused = await gql(app, CAPTION, { i, m: 'bad', o: { maxNewTokens: 4 } });
    expect(codes(refused)).toEqual(['MODEL_UNAVAILABLE']);
  });

  it('/ready stays 503 when every model failed', async () => {
    const bad = await brokenCopy(root, 'only-bad', { truncate: 'decoder_model_merged.onnx' });
    const { app } = await serve([{ id: 'bad', dir: bad }]);
    expect((await ready(app)).status).toBe(503);
  });
});
