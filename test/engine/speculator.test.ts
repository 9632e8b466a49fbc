// The speculator's policy and bookkeeping on hand-made requests and logits, no model:
// who drafts (mode, batch-size switch-off, remaining length), how the target's logits
// at the drafted positions are judged, and how many drafts the runner must drop.
import { describe, expect, it } from 'vitest';
import { RowDecoder } from '../../src/engine/row-decoder.ts';
import { createEngineConfig, type EngineConfigInput } from '../../src/config/config.ts';
import { Speculator, type Drafter, type SpeculatingRow } from '../../src/engine/speculator.ts';
import type { SpeculativeMode } from '../../src/contract/types.ts';
import { resolveOptions } from '../../text/sampling/options.ts';
import type { DraftToken } from '../../text/sampling/speculative.ts';
import type { TextTokenizer } from '../../text/tokenizer.ts';

const VOCAB = 6;
const EOS = 2;
const tokenizer = { tokenText: (id: number) => `t${id}`, decode: (ids: ArrayLike<number>) => Array.from(ids, (id) => `t${id}`).join(' ') } as unknown as TextTokenizer;

const EMBEDDING = { data: new Float32Array(4), numPatches: 1, hiddenSize: 4 };

let nextId = 1;
/** A decode row registered with the speculator in `mode`. */
function request(speculator: Speculator, mode: SpeculativeMode, prompt: number[], maxNewTokens = 10): SpeculatingRow {
  const id = nextId++;
  const promptIds = Int32Array.from(prompt);
  const row = new RowDecoder({ promptIds, options: resolveOptions({ maxNewTokens }) }, tokenizer, [EOS], undefined);
  speculator.add(id, mode);
  return {
    id, row, embedding: EMBEDDING, maxTokens: promptIds.length + maxNewTokens,
    get numTokens() {
      return promptIds.length + row.tokens.length;
    },
  };
}

function speculatorWith(settings: EngineConfigInput, drafter?: Drafter): Speculator {
  return new Speculator(createEngineConfig(settings), drafter);
}

async function draftIds(speculator: Speculator, rows: SpeculatingRow[], spare = Infinity): Promise<number[][]> {
  const proposals = await speculator.propose(rows, spare);
  return rows.map((r) => proposals.get(r.id)!.drafts.map((d) => d.id));
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
    const speculator = speculatorWith({ speculativeDrafts: 4, speculativeMaxBatch: 4 });
    const long = request(speculator, 'ngram', [1, 3, 4, 5, 3]);
    const short = request(speculator, 'ngram', [1, 3, 4, 5, 3], 2);
    const off = request(speculator, 'off', [1, 3, 4, 5, 3]);
    // 2 new tokens: one draft + the token after it
    expect(await draftIds(speculator, [long, short, off])).toEqual([[4, 5, 3], [4], []]);
  });

  it('drafts only into the KV slots the budget has left, shared among the decode rows', async () => {
    const speculator = speculatorWith({ speculativeDrafts: 4, speculativeMaxBatch: 4 });
    const rows = [0, 1].map(() => request(speculator, 'ngram', [1, 3, 4, 5, 3]));
    expect(await draftIds(speculator, rows, 5)).toEqual([[4, 5], [4, 5]]);
    expect(await draftIds(speculator, rows, 1)).toEqual([[], []]);
  });

  it('at load (more rows than speculativeMaxBatch) speculates only in a mode whose recent drafts were mostly accepted', async () => {
    const speculator = speculatorWith({ speculativeMaxBatch: 1, speculativeDrafts: 2 }, fixedDrafter([3, 4]));
    const [a, b] = [request(speculator, 'draft', [1]), request(speculator, 'draft', [1])];
    expect(await draftIds(speculator, [a, b])).toEqual([[], []]); // no history yet
    await speculator.propose([a], Infinity);
    speculator.judge(a.id, a.row, peaks([3, 4, 5]), VOCAB); // every draft kept
    expect((await draftIds(speculator, [a, b]))[1]).toEqual([3, 4]);
  });

  it('Medusa switched off at load by rejected guesses comes back once the guesses it keeps making would have been accepted', async () => {
    const speculator = new Speculator(createEngineConfig({ speculativeMaxBatch: 1, speculativeDrafts: 2 }), undefined, 2);
    const [a, b] = [request(speculator, 'medusa', [1], 40), request(speculator, 'medusa', [1], 40)];
    /** The heads' logits at one position: head k's argmax is guesses[k]. */
    const heads = (guesses: number[]): Float32Array => peaks(guesses);
    const step = async (next: number, guesses: number[]): Promise<number[]> => {
      const [drafts] = await draftIds(speculator, [a, b]);
      speculator.judge(a.id, a.row, peaks([next, ...drafts.map(() => 1)]), VOCAB, heads(guesses)); // drafts, if any, all rejected
      return drafts;
    };
    expect(await step(3, [4, 5])).toEqual([]); // no guesses yet
    expect(await step(1, [4, 5])).toEqual([4, 5]); // trusted at first; both rejected: 0 of 2
    expect(await step(4, [5, 3])).toEqual([]); // off at load
    // The row keeps decoding exactly what the heads guessed: the shadow record fills up, and drafting resumes.
    let resumed = -1;
    for (let t = 0; t < 12 && resumed < 0; t++) {
      const tokens = [5, 3];
      const drafts = await step(tokens[t % 2], [tokens[(t + 1) % 2], tokens[t % 2]]);
      if (drafts.length > 0) resumed = t;
    }
    expect(resumed).toBeGreaterThan(0);
  });

  it('pauses while more rows than speculativeMaxBatch are running', async () => {
    const speculator = speculatorWith({ speculativeMaxBatch: 2 });
    const rows = [0, 1, 2].map(() => request(speculator, 'ngram', [1, 3, 4, 3]));
    expect((await draftIds(speculator, rows)).every((d) => d.length === 0)).toBe(true);
    expect((await draftIds(speculator, rows.slice(0, 2)))[0].length).toBeGreaterThan(0);
  });

  it('keeps drafts up to the first rejection, takes the correction, and hands the rejected count to the next step once', async () => {
    const speculator = speculatorWith({ speculativeDrafts: 3 }, fixedDrafter([3, 4, 5]));
    const entry = request(speculator, 'draft', [1]);
    expect(await draftIds(speculator, [entry])).toEqual([[3, 4, 5]]);
    const isLive = speculator.judge(entry.id, entry.row, peaks([3, 1, 4, 4]), VOCAB); // keeps 3, rejects 4 for 1
    expect(isLive).toBe(true);
    expect(entry.row.tokens.map((t) => t.id)).toEqual([3, 1]);
    const next = (await speculator.propose([entry], Infinity)).get(entry.id)!;
    expect(next.numRejected).toBe(2);
    expect(next.drafts).toHaveLength(2); // one fewer after a rejection
    expect((await speculator.propose([entry], Infinity)).get(entry.id)!.numRejected).toBe(0);
    expect(speculator.remove(entry.id)).toEqual({ drafted: 3, accepted: 1 });
    expect(speculator.remove(entry.id)).toBeUndefined();
  });

  it('takes one more token after a step that kept every draft, and drafts more next time', async () => {
    const speculator = speculatorWith({ speculativeDrafts: 2 }, fixedDrafter([3, 4, 5, 3, 4, 5]));
    const entry = request(speculator, 'draft', [1]);
    await speculator.propose([entry], Infinity);
    speculator.judge(entry.id, entry.row, peaks([3, 4, 5]), VOCAB);
    expect(entry.row.tokens.map((t) => t.id)).toEqual([3, 4, 5]);
    const next = (await speculator.propose([entry], Infinity)).get(entry.id)!;
    expect([next.numRejected, next.drafts.length]).toEqual([0, 4]);
  });

  it('stops drafting at end-of-sequence and ends the row when the target agrees', async () => {
    const speculator = speculatorWith({ speculativeDrafts: 4 }, fixedDrafter([3, EOS, 4, 5]));
    const entry = request(speculator, 'draft', [1]);
    expect(await draftIds(speculator, [entry])).toEqual([[3, EOS]]);
    expect(speculator.judge(entry.id, entry.row, peaks([3, EOS, 0]), VOCAB)).toBe(false);
    expect(entry.row.finishReason).toBe('eos');
  });

  it('a restarted row (re-prefilled) has nothing to roll back', async () => {
    const speculator = speculatorWith({ speculativeDrafts: 3 }, fixedDrafter([3, 4, 5]));
    const entry = request(speculator, 'draft', [1]);
    await speculator.propose([entry], Infinity);
    speculator.judge(entry.id, entry.row, peaks([1, 1, 1, 1]), VOCAB); // rejects the first draft
    speculator.restart(entry.id);
    expect((await speculator.propose([entry], Infinity)).get(entry.id)!.numRejected).toBe(0);
  });

  it("resolves a request's mode, and refuses draft mode without a draft model", () => {
    expect(() => createEngineConfig({ speculativeDrafts: 0 })).toThrow(/speculativeDrafts/);
    expect(() => speculatorWith({ speculative: 'draft' })).toThrow(/draft model/);
    expect(() => speculatorWith({}).modeOf('draft')).toThrow(/draft model/);
    expect(speculatorWith({ speculative: 'ngram' }).modeOf(undefined)).toBe('ngram');
    expect(speculatorWith({ speculative: 'ngram' }).modeOf('off')).toBe('off');
    expect(speculatorWith({}, fixedDrafter([3])).modeOf('draft')).toBe('draft');
  });
});

describe('Speculator with Medusa heads', () => {
  const HEADS = 3;
  /** Head logits at each position: position j's heads peak at ids[j][k]. */
  const headPeaks = (ids: number[][]): Float32Array => {
    const out = new Float32Array(ids.length * HEADS * VOCAB);
    ids.forEach((heads, j) => heads.forEach((id, k) => (out[(j * HEADS + k) * VOCAB + id] = 5)));
    return out;
  };
  const medusa = (settings: EngineConfigInput = {}): Speculator => new Speculator(createEngineConfig({ speculativeMaxBatch: 32, ...settings }), undefined, HEADS);

  it('drafts next step what the heads guessed at the position that gave the newest token', async () => {
    const speculator = medusa();
    const r = request(speculator, 'medusa', [1, 3]);
    expect(await draftIds(speculator, [r])).toEqual([[]]); // nothing guessed before the first step
    // prefill: one position; the model says 4, the heads guess 5, 3, 4 after it
    expect(speculator.judge(r.id, r.row, peaks([4]), VOCAB, headPeaks([[5, 3, 4]]))).toBe(true);
    expect(await draftIds(speculator, [r])).toEqual([[5, 3, 4]]);
    // verify: 5 and 3 kept, 4 rejected for 1 (position 2 gave it): the guesses there are next
    expect(speculator.judge(r.id, r.row, peaks([5, 3, 1, 0]), VOCAB, headPeaks([[0, 0, 0], [0, 0, 0], [3, 5, 5], [0, 0, 0]]))).toBe(true);
    expect(r.row.tokens.map((t) => t.id)).toEqual([4, 5, 3, 1]);
    const proposals = await speculator.propose([r], Infinity);
    expect(proposals.get(r.id)).toMatchObject({ numRejected: 1 });
    expect(proposals.get(r.id)!.drafts.map((d) => d.id)).toEqual([3, 5, 5]);
  });

  it('stops its guesses at the end token, caps them at speculativeDrafts and the tokens left, and forgets them on a restart', async () => {
    const speculator = medusa({ speculativeDrafts: 2 });
    const r = request(speculator, 'medusa', [1], 3);
    speculator.judge(r.id, r.row, peaks([4]), VOCAB, headPeaks([[5, EOS, 3]]));
    expect(await draftIds(speculator, [r])).toEqual([[5]]); // 3 new tokens at most: 1 made, 1 verified this step, 1 draft
    const s = medusa({ speculativeDrafts: 4 });
    const q = request(s, 'medusa', [1]);
    s.judge(q.id, q.row, peaks([4]), VOCAB, headPeaks([[5, EOS, 3]]));
    expect(await draftIds(s, [q])).toEqual([[5, EOS]]);
    s.judge(q.id, q.row, peaks([4]), VOCAB, headPeaks([[5, 3, 3]]));
    s.restart(q.id);
    expect(await draftIds(s, [q])).toEqual([[]]);
  });

  it('guesses nothing for a step that ran without heads (e.g. another row wanted attention maps)', async () => {
    const speculator = medusa();
    const r = request(speculator, 'medusa', [1]);
    speculator.judge(r.id, r.row, peaks([4]), VOCAB);
    expect(await draftIds(speculator, [r])).toEqual([[]]);
  });

  it('asks for the heads graph only when a row speculates with them, and refuses medusa on a model without heads', () => {
    const speculator = medusa();
    const plain = request(speculator, 'off', [1]);
    const ngram = request(speculator, 'ngram', [1]);
    expect(speculator.wantsHeads([plain.id, ngram.id])).toBe(false);
    const heads = request(speculator, 'medusa', [1]);
    expect(speculator.wantsHeads([plain.id, heads.id])).toBe(true);
    const without = speculatorWith({});
    expect(() => without.modeOf('medusa')).toThrow(/INVALID_OPTIONS|Medusa heads/);
    expect(() => new Speculator(createEngineConfig({ speculative: 'medusa' }), undefined, 0)).toThrow(/Medusa heads/);
  });
});

describe('Speculator with Medusa heads at load', () => {
  const HEADS = 3;
  const headsAt = (ids: number[]): Float32Array => {
    const out = new Float32Array(HEADS * VOCAB);
    ids.forEach((id, k) => (out[k * VOCAB + id] = 5));
    return out;
  };
  /** One step of a lone row: verify its 3 guesses (5 3 4) with `kept` of them accepted, leaving guesses 5 3 4 again. */
  async function stepAlone(speculator: Speculator, r: SpeculatingRow, kept: number): Promise<void> {
    const proposals = await speculator.propose([r], Infinity);
    const drafts = proposals.get(r.id)!.drafts.map((d) => d.id);
    const said = [...drafts.slice(0, kept), 1, 1, 1, 1].slice(0, drafts.length + 1); // 1 where the model disagrees
    const heads = new Float32Array(said.length * HEADS * VOCAB);
    heads.set(headsAt([5, 3, 4]), Math.min(kept, drafts.length) * HEADS * VOCAB);
    speculator.judge(r.id, r.row, peaks(said), VOCAB, heads);
  }

  it('starts out trusted at load, before any guess has been judged (unlike the other modes)', async () => {
    const speculator = new Speculator(createEngineConfig({ speculativeMaxBatch: 1 }), undefined, HEADS);
    const [a, b] = [request(speculator, 'medusa', [1], 40), request(speculator, 'medusa', [1], 40)];
    for (const r of [a, b]) speculator.judge(r.id, r.row, peaks([4]), VOCAB, headsAt([5, 3, 4]));
    expect(await draftIds(speculator, [a, b])).toEqual([[5, 3, 4], [5, 3, 4]]);
  });

  it('keeps speculating above speculativeMaxBatch at 2 of 3 guesses accepted, and pauses at 1 of 3', async () => {
    for (const [kept, goesOn] of [[2, true], [1, false]] as const) {
      const speculator = new Speculator(createEngineConfig({ speculativeMaxBatch: 1 }), undefined, HEADS);
      const r = request(speculator, 'medusa', [1], 40);
      speculator.judge(r.id, r.row, peaks([4]), VOCAB, headsAt([5, 3, 4]));
      for (let i = 0; i < 4; i++) await stepAlone(speculator, r, kept);
      const other = request(speculator, 'medusa', [1], 40);
      const drafts = await draftIds(speculator, [r, other]); // two rows: above speculativeMaxBatch
      expect(drafts[0].length > 0, `${kept} of 3 kept`).toBe(goesOn);
    }
  });
});

describe("the default 'auto'", () => {
  it('is Medusa for greedy requests on a model with heads, and plain decoding for sampled ones or without heads', () => {
    const withHeads = new Speculator(createEngineConfig({}), undefined, 3);
    expect(withHeads.modeOf(undefined, true)).toBe('medusa');
    expect(withHeads.modeOf(undefined, false)).toBe('off');
    expect(withHeads.modeOf('ngram', true)).toBe('ngram'); // a request's own choice wins
    const without = new Speculator(createEngineConfig({}), undefined, 0);
    expect(without.modeOf(undefined, true)).toBe('off');
    expect(new Speculator(createEngineConfig({ speculative: 'off' }), undefined, 3).modeOf(undefined, true)).toBe('off');
  });
});
