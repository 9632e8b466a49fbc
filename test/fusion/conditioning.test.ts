// Conditioning rows on image features: gathered per row, counts and shapes checked.
import { describe, expect, it } from 'vitest';
import { assembleEncoderRows, gatherEncoderStates } from '../../fusion/conditioning.ts';
import { readModelFolder } from '../../src/model/folder.ts';

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
