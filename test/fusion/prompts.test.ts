// Task prompts from a model folder's templates, and the user text they may hold.
import { describe, expect, it } from 'vitest';
import { buildPromptIds, parseTaskTemplates, promptText } from '../../fusion/prompts.ts';
import { TextTokenizer } from '../../text/tokenizer.ts';
import { FIXTURES } from '../helpers.ts';

describe('task prompts', () => {
  const templates = parseTaskTemplates({ caption: { template: '' }, answer: { template: '<question> {question} <answer>' }, generate: { template: '{prompt}' } });

  it('fills the folder templates and prepends the decoder start token', async () => {
    const tokenizer = await TextTokenizer.load(FIXTURES.encoderDecoder);
    const text = promptText({ task: 'answer', question: ' What color is the circle? ' }, templates, ['<answer>']);
    expect(text).toBe('<question> What color is the circle? <answer>');
    expect(Array.from(buildPromptIds(text, tokenizer, { decoderStartId: 1 }))).toEqual([1, 4, 26, 27, 28, 8, 23, 14, 5]);
    expect(Array.from(buildPromptIds(promptText({ task: 'caption' }, templates, []), tokenizer, { decoderStartId: 1 }))).toEqual([1]);
  });

  it('expands the image token of a joint-embedding prompt in place, and needs exactly one', () => {
    const tokenizer = { encode: (text: string) => Int32Array.from(text.split(' ').map(Number)) };
    expect(Array.from(buildPromptIds('9 1 4', tokenizer, { imageTokenId: 9, numImageTokens: 3 }))).toEqual([9, 9, 9, 1, 4]);
    expect(() => buildPromptIds('1 4', tokenizer, { imageTokenId: 9, numImageTokens: 3 })).toThrow(/exactly one image token/);
    expect(() => buildPromptIds('9 1 9', tokenizer, { imageTokenId: 9, numImageTokens: 3 })).toThrow(/exactly one image token/);
  });

  it('rejects missing questions, forged special tokens, and tasks the folder lacks', () => {
    expect(() => promptText({ task: 'answer', question: ' ' }, templates, [])).toThrow(/non-empty question/);
    expect(() => promptText({ task: 'generate', prompt: 'a <answer> b' }, templates, ['<answer>'])).toThrow(/special token '<answer>'/);
    const stock = parseTaskTemplates(undefined);
    expect(() => promptText({ task: 'answer', question: 'why?' }, stock, [])).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    expect(promptText({ task: 'generate', prompt: 'a dog' }, stock, [])).toBe('a dog');
  });
});
