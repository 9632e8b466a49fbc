// Reading the cache layout (naming, heads, head size, dtype) from a decoder's declared
// inputs. The cache driven through real steps is tested with the decoder batch
// (test/engine/decoder-batch.test.ts).
import { describe, expect, it } from 'vitest';
import { detectCacheLayout } from '../../text/kv-cache.ts';

describe('detectCacheLayout', () => {
  it('tells the two namings apart and reads the static head shape', () => {
    const shape = ['batch_size', 4, 'past', 8];
    const gpt2 = detectCacheLayout([0, 1].flatMap((i) => ['key', 'value'].map((kv) => ({ name: `past_key_values.${i}.${kv}`, shape, type: 'float32' }))));
    expect(gpt2).toEqual({ naming: 'self-only', numLayers: 2, numHeads: 4, headDim: 8, dtype: 'float32' });
    const encDec = detectCacheLayout(['decoder', 'encoder'].flatMap((part) => ['key', 'value'].map((kv) => ({ name: `past_key_values.0.${part}.${kv}`, shape, type: 'float16' }))));
    expect(encDec).toEqual({ naming: 'encoder-decoder', numLayers: 1, numHeads: 4, headDim: 8, dtype: 'float16' });
    expect(() => detectCacheLayout([{ name: 'input_ids' }])).toThrow(/no past_key_values/);
  });
});
