// Decoder adapters by model type: cache naming and position limits.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adapterFor, positionLimit } from '../../fusion/adapters.ts';
import { ReferenceDecoder } from '../../src/engine/reference-decoder.ts';
import { FIXTURES } from '../helpers.ts';

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
