// Incremental detokenizing: text released only in whole characters and words.
import { describe, expect, it } from 'vitest';
import { IncrementalDetokenizer } from '../../text/detokenizer.ts';
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

describe('IncrementalDetokenizer after a context (a continuation of its prompt)', () => {
  it('starts the text as it reads after the context: a space before a new word, none before punctuation', async () => {
    const tokenizer = await TextTokenizer.load(FIXTURES.encoderDecoder);
    const decoder = { decode: (ids: ArrayLike<number>) => tokenizer.decode(ids) };
    const prompt = tokenizer.encode('a small red');
    const word = new IncrementalDetokenizer(decoder, prompt);
    const out = Array.from(tokenizer.encode('circle above'), (id) => word.push(id)).join('') + word.flush();
    expect(out).toBe(' circle above');
    expect('a small red' + out).toBe('a small red circle above');
    const comma = new IncrementalDetokenizer(decoder, tokenizer.encode('a small red circle'));
    expect(Array.from(tokenizer.encode(', a'), (id) => comma.push(id)).join('') + comma.flush()).toBe(', a');
    const none = new IncrementalDetokenizer(decoder, []);
    expect(Array.from(tokenizer.encode('circle'), (id) => none.push(id)).join('') + none.flush()).toBe('circle');
  });
});

describe('TextTokenizer.decode of short windows (remembered)', () => {
  it('gives again what the library gave the first time, special tokens kept apart from skipped', async () => {
    const tokenizer = await TextTokenizer.load(FIXTURES.encoderDecoder);
    const special = Array.from({ length: tokenizer.vocabSize }, (_, id) => id).find((id) => tokenizer.isSpecial(id))!;
    const windows = [[special], [special, 5], [5, special], ...Array.from({ length: 200 }, (_, i) => Array.from({ length: 1 + (i % 4) }, (_, j) => (i * 7 + j * 13) % tokenizer.vocabSize))];
    const first = windows.map((ids) => [true, false].map((skipSpecial) => tokenizer.decode(ids, { skipSpecial }))); // each decoded afresh
    expect(first[0][0]).not.toBe(first[0][1]);
    // Again, each flag's entry looked up right after the other's: the same texts.
    const again = windows.map((ids) => [false, true].map((skipSpecial) => tokenizer.decode(ids, { skipSpecial })).reverse());
    expect(again).toEqual(first);
    expect(tokenizer.tokenText(special)).toBe(first[0][1]);
  });
});
