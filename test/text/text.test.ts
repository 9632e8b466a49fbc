// Detokenization, stop strings, batch inputs and prompts, on hand-made data and the fixture tokenizer.
import { describe, expect, it } from 'vitest';
import { buildPromptIds, parseTaskTemplates, promptText } from '../../fusion/prompts.ts';
import { assembleStates, decodeStep, prefillStep } from '../../text/batch-inputs.ts';
import { IncrementalDetokenizer } from '../../text/detokenizer.ts';
import { StopStringMatcher } from '../../text/sampling/stop-strings.ts';
import { TextTokenizer } from '../../text/tokenizer.ts';
import { FIXTURES } from '../helpers.ts';

describe('IncrementalDetokenizer', () => {
  it('never emits half of a multi-byte character (byte-level decoder)', () => {
    // a byte-level decoder: each id is one UTF-8 byte
    const decoder = { decode: (ids: ArrayLike<number>) => new TextDecoder().decode(Uint8Array.from(ids as number[])) };
    const bytes = Array.from(new TextEncoder().encode('héllo 🌈!'));
    const detok = new IncrementalDetokenizer(decoder);
    const deltas = bytes.map((b) => detok.push(b));
    expect(deltas.every((d) => !d.includes('\uFFFD'))).toBe(true);
    expect(deltas.join('') + detok.flush()).toBe('héllo 🌈!');
    expect(deltas.filter((d) => d === '').length).toBeGreaterThan(0); // held back mid-character
  });

  it('reproduces the WordPiece cleanup of the fixture tokenizer', async () => {
    const tokenizer = await TextTokenizer.load(FIXTURES.encoderDecoder);
    const ids = tokenizer.encode('a small red circle, a large blue square and a small green triangle');
    const detok = new IncrementalDetokenizer({ decode: (x) => tokenizer.decode(x) });
    const text = Array.from(ids, (id) => detok.push(id)).join('') + detok.flush();
    expect(text).toBe(tokenizer.decode(ids));
    expect(text).toBe('a small red circle, a large blue square and a small green triangle');
  });
});

describe('StopStringMatcher', () => {
  it('holds back possible stop prefixes and cuts at the first match', () => {
    const m = new StopStringMatcher(['and a', 'zz']);
    expect(m.push('red circle ').emit).toBe('red circle ');
    expect(m.push('an')).toEqual({ emit: '', isStopped: false });
    expect(m.push('d a small')).toEqual({ emit: '', isStopped: true });
    expect(m.text).toBe('red circle ');
  });

  it('releases a held-back tail that never became a stop string', () => {
    const m = new StopStringMatcher(['and a']);
    expect(m.push('red an').emit).toBe('red ');
    expect(m.flush()).toBe('an');
    expect(m.text).toBe('red an');
  });
});

describe('batch inputs', () => {
  it('left-pads prompts, masks the padding and counts positions per row', () => {
    const { step, state } = prefillStep([Int32Array.from([1, 4, 5]), Int32Array.from([1])], 0);
    expect(Array.from(step.inputIds)).toEqual([1, 4, 5, 0, 0, 1]);
    expect(Array.from(step.attentionMask)).toEqual([1, 1, 1, 0, 0, 1]);
    expect(Array.from(step.positionIds)).toEqual([0, 1, 2, 0, 0, 0]);
    const next = decodeStep(state, Int32Array.from([7, 8]));
    expect(Array.from(next.step.attentionMask)).toEqual([1, 1, 1, 1, 0, 0, 1, 1]);
    expect(Array.from(next.step.positionIds)).toEqual([3, 1]);
    const kept = assembleStates([{ state: next.state, rows: [1], fromColumn: 0 }]);
    expect(Array.from(kept.attentionMask)).toEqual([0, 0, 1, 1]);
    expect(Array.from(kept.nextPosition)).toEqual([2]);
  });
});

describe('task prompts', () => {
  const templates = parseTaskTemplates({ caption: { template: '' }, answer: { template: '<question> {question} <answer>' }, generate: { template: '{prompt}' } });

  it('fills the folder templates and prepends the decoder start token', async () => {
    const tokenizer = await TextTokenizer.load(FIXTURES.encoderDecoder);
    const text = promptText({ task: 'answer', question: ' What color is the circle? ' }, templates, ['<answer>']);
    expect(text).toBe('<question> What color is the circle? <answer>');
    expect(Array.from(buildPromptIds(text, tokenizer, 1))).toEqual([1, 4, 26, 27, 28, 8, 23, 14, 5]);
    expect(Array.from(buildPromptIds(promptText({ task: 'caption' }, templates, []), tokenizer, 1))).toEqual([1]);
  });

  it('rejects missing questions, forged special tokens, and tasks the folder lacks', () => {
    expect(() => promptText({ task: 'answer', question: ' ' }, templates, [])).toThrow(/non-empty question/);
    expect(() => promptText({ task: 'generate', prompt: 'a <answer> b' }, templates, ['<answer>'])).toThrow(/special token '<answer>'/);
    const stock = parseTaskTemplates(undefined);
    expect(() => promptText({ task: 'answer', question: 'why?' }, stock, [])).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    expect(promptText({ task: 'generate', prompt: 'a dog' }, stock, [])).toBe('a dog');
  });
});

describe('float16 conversion', () => {
  it('round-trips values exactly representable in half precision and rounds the rest to nearest', async () => {
    const { floatToHalf, halfToFloat } = await import('../../src/contract/float16.ts');
    const exact = Float32Array.from([0, -0, 1, -2.5, 65504, 2 ** -14, 2 ** -24, 0.099975586, Infinity, -Infinity]);
    expect(Array.from(halfToFloat(floatToHalf(exact)))).toEqual(Array.from(exact));
    expect(halfToFloat(floatToHalf(Float32Array.from([NaN])))[0]).toBeNaN();
    const some = Float32Array.from([0.1, 3.14159, -1234.567, 1e-5, 1e6]);
    const back = halfToFloat(floatToHalf(some));
    some.forEach((v, i) => {
      if (Math.abs(v) > 65504) expect(back[i]).toBe(Infinity);
      else expect(Math.abs(back[i] - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25));
    });
  });
});
