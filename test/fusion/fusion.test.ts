// Model-folder conventions: task templates, special ids, position limits, adapters, and
// the per-row conditioning on image features.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapterFor, positionLimit } from '../../fusion/adapters.ts';
import { assembleEncoderRows, gatherEncoderStates } from '../../fusion/conditioning.ts';
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

describe('adapters', () => {
  it('pick the cache naming and position limit by decoder model_type, with a generic fallback', () => {
    expect(adapterFor('gpt2')?.cacheNaming).toBe('self-only');
    expect(adapterFor('trocr')?.cacheNaming).toBe('encoder-decoder');
    expect(positionLimit({ n_positions: 1024, max_position_embeddings: 7 }, adapterFor('gpt2'))).toBe(1024);
    expect(positionLimit({ max_target_positions: 448 }, adapterFor('whisper'))).toBe(448);
    expect(adapterFor('mystery')).toBeUndefined();
    expect(positionLimit({ n_ctx: 99 }, undefined)).toBe(99);
    expect(positionLimit({}, undefined)).toBeUndefined();
  });

  it('refuse a folder whose graph uses the other cache naming', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iris-mismatch-'));
    try {
      await cp(FIXTURES.gpt2, dir, { recursive: true });
      const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { decoder: Record<string, unknown> };
      config.decoder.model_type = 'trocr';
      await writeFile(join(dir, 'config.json'), JSON.stringify(config));
      await expect(ReferenceDecoder.load({ modelDir: dir, threads: 1 })).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('conditioning', () => {
  const emb = (fill: number) => ({ data: new Float32Array(6).fill(fill), numPatches: 2, hiddenSize: 3 });

  it('gives each row its image features, shared images copied per row', () => {
    const states = gatherEncoderStates([emb(1), emb(2)], [1, 0, 1]);
    expect(Array.from(states.data)).toEqual([...Array(6).fill(2), ...Array(6).fill(1), ...Array(6).fill(2)]);
    expect(Array.from(assembleEncoderRows([{ states, rows: [1] }]).data)).toEqual(Array(6).fill(1));
  });

  it('throws when counts or shapes do not match', () => {
    expect(() => gatherEncoderStates([emb(1)], [1])).toThrow(/refers to image 1/);
    expect(() => gatherEncoderStates([emb(1), { data: new Float32Array(4), numPatches: 2, hiddenSize: 2 }], [0])).toThrow(/disagree/);
    expect(() => gatherEncoderStates([], [0])).toThrow();
  });

  it('a missing model folder is MODEL_NOT_FOUND', async () => {
    await expect(readModelFolder('/nonexistent/model')).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
  });
});
