// Reading model folders: a stock captioner's folder (no task templates) and missing folders.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelFolder } from '../../src/model/folder.ts';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import { FIXTURES, syntheticImage } from '../helpers.ts';

describe('a stock captioner folder (no task_specific_params)', () => {
  let dir: string;
  let pipeline: ReferenceDecoder;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'iris-stock-'));
    await cp(FIXTURES.gpt2, dir, { recursive: true });
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete config.task_specific_params;
    await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [2, 3], decoder_start_token_id: 1 }));
    pipeline = await ReferenceDecoder.load({ modelDir: dir, threads: 1 });
  });
  afterAll(async () => {
    await pipeline.release();
    await rm(dir, { recursive: true, force: true });
  });

  it('captions, treats a generate prompt as a plain prefix, and refuses to answer questions', async () => {
    const image = await syntheticImage(64, 64, 5);
    const caption = await pipeline.generate({ task: 'caption', image, options: { maxNewTokens: 3 } });
    expect(caption.usage.promptTokens).toBe(1);
    const generated = await pipeline.generate({ task: 'generate', image, prompt: 'a small red', options: { maxNewTokens: 3 } });
    expect(generated.usage.promptTokens).toBe(4);
    await expect(pipeline.generate({ task: 'answer', image, question: 'how many shapes are there?' })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      message: expect.stringMatching(/does not support task 'answer'/),
    });
  });

  it('reads ids with generation_config.json winning, and the position limit through the gpt2 adapter', async () => {
    const folder = await readModelFolder(dir);
    expect(folder.ids).toEqual({ decoderStart: 1, eos: [2, 3], pad: 0 });
    expect(folder.maxPositions).toBe(64);
    expect(folder.templates).toEqual({ caption: '', generate: '{prompt}' });
  });
});
