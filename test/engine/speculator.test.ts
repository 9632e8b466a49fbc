// The speculator's policy and bookkeeping on hand-made requests and logits, no model:
// who drafts (mode, batch-size switch-off, remaining length), how the target's logits
// at the drafted positions are judged, and how many drafts the runner must drop.
import { describe, expect, it } from 'vitest';
import { createEngineConfig, type EngineConfigInput } from '../../src/config/config.ts';
import { EngineRequest } from '../../src/engine/request.ts';
import { Speculator, type Drafter } from '../../src/engine/speculator.ts';
import type { SpeculativeMode } from '../../src/contract/types.ts';
import { resolveOptions } from '../../text/sampling/options.ts';
import type { DraftToken } from '../../text/sampling/speculative.ts';
import type { TextTokenizer } from '../../text/tokenizer.ts';

const VOCAB = 6;
const EOS = 2;
const tokenizer = { tokenText: (id: number) => `t${id}`, decode: (ids: ArrayLike<number>) => Array.from(ids, (id) => `t${id}`).join(' ') } as unknown as TextTokenizer;

let nextId = 1;
function request(mode: SpeculativeMode, prompt: number[], maxNewTokens = 10): EngineRequest {
  const entry = new EngineRequest({ id: nextId++, spec: { promptIds: Int32Array.from(prompt), options: resolveOptions({ maxNewTokens }) }, tokenizer, eosIds: [EOS], arrivedAt: 0 });
  entry.speculative = mode;
  return entry;
}

/** Logits whose argmax at each position is the given id. */
function peaks(ids: number[]): Float32Array {
  const out = new Float32Array(ids.length * VOCAB);
  ids.forEach((id, j) => (out[j * VOCAB + id] = 5));
  return out;
}

/** A speculator on the engine config's defaults, with the given settings over them. */
const speculatorOf = (settings: EngineConfigInput, drafter?: Drafter): Speculator => new Speculator(createEngineConfig(settings), drafter);

const fixedDrafter = (drafts: number[]): Drafter => ({
  propose: async (entries, counts) => entries.map((_, i): DraftToken[] => drafts.slice(0, counts[i]).map((id) => ({ id }))),
  reset: () => {},
  release: async () => {},
});

describe('Speculator', () => {
  it('drafts by prompt lookup, capped by the tokens the request may still generate', async () => {
    const speculator = speculatorOf({ speculativeDrafts: 4, speculativeMaxBatch: 4 });
    const long = request('ngram', [1, 3, 4, 5, 3]);
    const short = request('ngram', [1, 3, 4, 5, 3], 2);
    const off = request('off', [1, 3, 4, 5, 3]);
    await speculator.propose([long, short, off]);
    expect(long.drafts.map((d) => d.id)).toEqual([4, 5, 3]);
    expect(short.drafts.map((d) => d.id)).toEqual([4]); // 2 new tokens: one draft + the token after it
    expect(off.drafts).toEqual([]);
  });

  it('at load (more rows than speculativeMaxBatch) speculates only in a mode whose recent drafts were mostly accepted', async () => {
    const speculator = speculatorOf({ speculativeMaxBatch: 1, speculativeDrafts: 2 }, fixedDrafter([3, 4]));
    const [a, b] = [request('draft', [1]), request('draft', [1])];
    await speculator.propose([a, b]);
    expect(a.drafts).toEqual([]); // no history yet
    await speculator.propose([a]);
    speculator.accept(a, peaks([3, 4, 5]), VOCAB); // every draft kept
    await speculator.propose([a, b]);
    expect(b.drafts.map((d) => d.id)).toEqual([3, 4]);
  });

  it('pauses while more rows than speculativeMaxBatch are running', async () => {
    const speculator = speculatorOf({ speculativeMaxBatch: 2 });
    const rows = [0, 1, 2].map(() => request('ngram', [1, 3, 4, 3]));
    await speculator.propose(rows);
    expect(rows.every((r) => r.drafts.length === 0)).toBe(true);
    await speculator.propose(rows.slice(0, 2));
    expect(rows[0].drafts.length).toBeGreaterThan(0);
  });

  it('keeps drafts up to the first rejection, takes the correction, and reports what to drop', async () => {
    const speculator = speculatorOf({ speculativeDrafts: 3 }, fixedDrafter([3, 4, 5]));
    const entry = request('draft', [1]);
    await speculator.propose([entry]);
    expect(entry.drafts.map((d) => d.id)).toEqual([3, 4, 5]);
    const isLive = speculator.accept(entry, peaks([3, 1, 4, 4]), VOCAB); // keeps 3, rejects 4 for 1
    expect(isLive).toBe(true);
    expect(entry.row.tokens.map((t) => t.id)).toEqual([3, 1]);
    expect([entry.numDrafted, entry.numAccepted, entry.numRejected]).toEqual([3, 1, 2]);
    expect(entry.numDraftsNext).toBe(2); // one fewer after a rejection
  });

  it('takes one more token after a step that kept every draft, and drafts more next time', async () => {
    const speculator = speculatorOf({ speculativeDrafts: 2 }, fixedDrafter([3, 4, 5, 3, 4, 5]));
    const entry = request('draft', [1]);
    await speculator.propose([entry]);
    speculator.accept(entry, peaks([3, 4, 5]), VOCAB);
    expect(entry.row.tokens.map((t) => t.id)).toEqual([3, 4, 5]);
    expect([entry.numAccepted, entry.numRejected, entry.numDraftsNext]).toEqual([2, 0, 4]);
    await speculator.propose([entry]);
    expect(entry.drafts).toHaveLength(4);
  });

  it('stops drafting at end-of-sequence and ends the row when the target agrees', async () => {
    const speculator = speculatorOf({ speculativeDrafts: 4 }, fixedDrafter([3, EOS, 4, 5]));
    const entry = request('draft', [1]);
    await speculator.propose([entry]);
    expect(entry.drafts.map((d) => d.id)).toEqual([3, EOS]);
    expect(speculator.accept(entry, peaks([3, EOS, 0]), VOCAB)).toBe(false);
    expect(entry.row.finishReason).toBe('eos');
  });

  it('takes its settings validated once, by the engine config, and refuses draft mode without a draft model', () => {
    expect(() => createEngineConfig({ speculativeDrafts: 0 })).toThrow(/speculativeDrafts/);
    expect(() => speculatorOf({ speculative: 'draft' })).toThrow(/draft model/);
    expect(() => speculatorOf({}).modeOf(resolveOptions({ speculative: 'draft' }))).toThrow(/draft model/);
    expect(speculatorOf({ speculative: 'ngram' }).modeOf(resolveOptions({}))).toBe('ngram');
  });
});
