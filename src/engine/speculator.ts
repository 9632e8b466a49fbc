// Speculative decoding, the engine's side: which rows speculate this step, their drafts
// (prompt lookup here, a Drafter running the small draft model, or the Medusa heads'
// guesses from the row's previous step), and judging the target's logits at each drafted
// position with the request's own sampler. It owns every
// request's speculation state (mode, drafts, counts) and hands the engine a typed
// proposal per step; the runner verifies the drafts and rolls back what was rejected.
import type { EngineConfig } from '../config/config.ts';
import { IrisError, type SpeculativeMode } from '../contract/types.ts';
import type { DraftToken } from '../../text/sampling/speculative.ts';
import { proposeNgram } from '../../text/speculative/ngram.ts';
import type { ImageEmbedding } from '../../vision/encoder.ts';
import type { RowDecoder } from './row-decoder.ts';

/** The engine settings the speculator reads, validated by createEngineConfig. */
export type SpeculationConfig = Pick<EngineConfig, 'speculative' | 'speculativeMaxBatch' | 'speculativeDrafts'>;

/** What a drafter sees of a request: its sequence, image and sampler, nothing of the engine. */
export interface DraftRow {
  readonly id: number;
  /** Prompt + generated tokens. */
  readonly sequence: Int32Array;
  readonly embedding: ImageEmbedding;
  isEos(id: number): boolean;
  /** The row's next draft after its sequence plus `drafted`, drawn with its own sampler. */
  propose(logits: Float32Array, drafted: readonly number[]): DraftToken;
}

/** Runs a draft model: k tokens for each row, drawn with the row's own sampler. */
export interface Drafter {
  propose(rows: readonly DraftRow[], numDrafts: readonly number[]): Promise<DraftToken[][]>;
  /** Forget its batch (after a failed step). */
  reset(): void;
  release(): Promise<void>;
}

/** A decode row as the speculator sees it. */
export interface SpeculatingRow {
  readonly id: number;
  readonly row: RowDecoder;
  readonly embedding: ImageEmbedding;
  /** prompt + max new tokens, and prompt + generated so far. */
  readonly maxTokens: number;
  readonly numTokens: number;
}

/** This step's word on one decode row. */
export interface Proposal {
  /** Drafts to verify after the row's newest token (empty: plain decoding). */
  readonly drafts: readonly DraftToken[];
  /** Drafts the sampler rejected last step: the runner drops them from the row's cache first. */
  readonly numRejected: number;
}

export interface SpeculationCounts {
  readonly drafted: number;
  readonly accepted: number;
}

interface RowSpeculation {
  readonly mode: SpeculativeMode;
  drafts: readonly DraftToken[];
  /** Medusa: the heads' guesses at the position that gave the row's newest token (next step's drafts). */
  guesses: readonly DraftToken[];
  /**
   * Medusa, while the row does not draft (switched off at load): guesses made at some step,
   * checked against the tokens the row then decodes one by one, so the mode's acceptance
   * record keeps moving without drafting (a switch-off would otherwise never end).
   */
  shadow?: { readonly ids: readonly number[]; matched: number };
  numRejected: number;
  drafted: number;
  accepted: number;
  /** Drafts to ask for next step (0: numDrafts). */
  numDraftsNext: number;
}

const NGRAM_MAX = 3;
/** Weight of past steps in a mode's recent acceptance rate. */
const DECAY = 0.98;
/**
 * The recent acceptance rate a mode needs to keep speculating above speculativeMaxBatch
 * rows. A rejected draft-model or n-gram draft cost a drafter call or a wasted verify
 * position; a rejected Medusa guess only a wider verify row, the guess itself was free
 * (at 77 % accepted, shapes-base's heads gave 1.4× the tokens/s of plain decoding at 32
 * concurrent requests, `npm run bench:speculative`).
 */
const MIN_ACCEPTANCE_AT_LOAD: Readonly<Record<SpeculativeMode, number>> = { off: 1, draft: 0.8, ngram: 0.8, medusa: 0.6 };
const NO_PROPOSAL: Proposal = Object.freeze({ drafts: [], numRejected: 0 });

export class Speculator {
  /** Decayed drafted/accepted counts per mode, for the switch-off at load. */
  private readonly recent = new Map<SpeculativeMode, { drafted: number; accepted: number }>();
  private readonly rows = new Map<number, RowSpeculation>();

  constructor(
    private readonly config: SpeculationConfig,
    private readonly drafter: Drafter | undefined,
    /** Medusa heads the model's decoder can compute (0: none). */
    private readonly numHeads = 0,
  ) {
    if (config.speculative === 'draft' && !drafter) throw new IrisError('MODEL_NOT_FOUND', `speculative 'draft' needs a draft model (<model>/draft/onnx/decoder_model_merged.onnx), and this model has none`);
    if (config.speculative === 'medusa' && numHeads === 0) throw new IrisError('MODEL_NOT_FOUND', `speculative 'medusa' needs Medusa heads (<model>/medusa/onnx/decoder_model_merged.onnx), and this model has none`);
  }

  /**
   * A request's mode: its own choice or the default ('auto': Medusa heads for a greedy
   * request when the model has them, else off); INVALID_OPTIONS for 'draft' or 'medusa'
   * without their model files.
   */
  modeOf(requested: SpeculativeMode | undefined, isGreedy = false): SpeculativeMode {
    const { speculative } = this.config;
    const mode = requested ?? (speculative === 'auto' ? (isGreedy && this.numHeads > 0 ? 'medusa' : 'off') : speculative);
    if (mode === 'draft' && !this.drafter) throw new IrisError('INVALID_OPTIONS', `speculative 'draft' needs a draft model, and this model has none; use ${this.alternatives('draft')}`);
    if (mode === 'medusa' && this.numHeads === 0) throw new IrisError('INVALID_OPTIONS', `speculative 'medusa' needs Medusa heads, and this model has none; use ${this.alternatives('medusa')}`);
    return mode;
  }

  private alternatives(missing: SpeculativeMode): string {
    const modes = ['ngram', ...(this.drafter && missing !== 'draft' ? ['draft'] : []), ...(this.numHeads > 0 && missing !== 'medusa' ? ['medusa'] : []), 'off'];
    return modes.map((m) => `'${m}'`).join(', ').replace(/, ([^,]*)$/, ' or $1');
  }

  /** Start tracking a request in `mode` ('off' is not tracked). */
  add(id: number, mode: SpeculativeMode): void {
    if (mode !== 'off') this.rows.set(id, { mode, drafts: [], guesses: [], numRejected: 0, drafted: 0, accepted: 0, numDraftsNext: 0 });
  }

  /** True when some of these rows speculates with Medusa heads: the step should run the decoder that computes them. */
  wantsHeads(ids: Iterable<number>): boolean {
    if (this.numHeads === 0) return false;
    for (const id of ids) if (this.rows.get(id)?.mode === 'medusa') return true;
    return false;
  }

  /** Its counts for the result's timings (undefined: it did not speculate); it is forgotten. */
  remove(id: number): SpeculationCounts | undefined {
    const state = this.rows.get(id);
    this.rows.delete(id);
    return state && { drafted: state.drafted, accepted: state.accepted };
  }

  /** A row (re)prefilled from its tokens: its cache holds no drafts to roll back. */
  restart(id: number): void {
    const state = this.rows.get(id);
    if (state) {
      state.drafts = [];
      state.guesses = [];
      state.shadow = undefined;
      state.numRejected = 0;
    }
  }

  /**
   * This step's proposal for each decode row, drafts at most within the KV slots the
   * budget has left (a verify step widens every row of the dense cache by the most drafts
   * any row has, until the next step rolls the rejected ones back). At load (more than
   * speculativeMaxBatch rows) a step is compute-bound and rejected drafts cost throughput, so
   * only a mode whose recent drafts were mostly accepted keeps speculating there.
   */
  async propose(decode: readonly SpeculatingRow[], spareKvTokens: number): Promise<ReadonlyMap<number, Proposal>> {
    const { config } = this;
    const maxPerRow = Math.max(0, Math.floor(spareKvTokens / Math.max(1, decode.length)));
    const isLoaded = decode.length > config.speculativeMaxBatch;
    const drafting: SpeculatingRow[] = [];
    const counts: number[] = [];
    for (const entry of decode) {
      const state = this.rows.get(entry.id);
      if (!state) continue;
      state.drafts = [];
      if (isLoaded && !this.paysAtLoad(state.mode)) continue;
      const count = Math.min(state.numDraftsNext || config.speculativeDrafts, entry.maxTokens - entry.numTokens - 1, maxPerRow);
      if (count <= 0) continue;
      if (state.mode === 'ngram') state.drafts = throughEos(entry.row, Array.from(proposeNgram(entry.row.sequence, count, NGRAM_MAX), (id) => ({ id })));
      else if (state.mode === 'medusa') state.drafts = throughEos(entry.row, state.guesses.slice(0, count));
      else {
        drafting.push(entry);
        counts.push(count);
      }
    }
    if (drafting.length > 0 && this.drafter) {
      const drafts = await this.drafter.propose(drafting.map(draftRowOf), counts);
      drafting.forEach((entry, i) => (this.rows.get(entry.id)!.drafts = throughEos(entry.row, drafts[i])));
    }
    // Last step's rejections are handed over once: the runner rolls them back this step.
    return new Map(decode.map((entry) => {
      const state = this.rows.get(entry.id);
      if (!state) return [entry.id, NO_PROPOSAL];
      const proposal = { drafts: state.drafts, numRejected: state.numRejected };
      state.numRejected = 0;
      return [entry.id, proposal];
    }));
  }

  /**
   * Judge this step's drafts against the target's logits ([drafts + 1, vocab]) with the
   * row's sampler; false once the row has finished. `headLogits` ([drafts + 1, heads,
   * vocab]), when the step computed them: a Medusa row's guesses for its next step are
   * drawn from the heads at the position that gave its newest token.
   */
  judge(id: number, row: RowDecoder, logits: Float32Array, vocabSize: number, headLogits?: Float32Array): boolean {
    const state = this.rows.get(id);
    const drafts = state?.drafts ?? [];
    let numAccepted = 0;
    let isLive = true;
    let j = 0;
    for (; isLive; j++) {
      const position = logits.subarray(j * vocabSize, (j + 1) * vocabSize);
      if (j === drafts.length) {
        isLive = row.accept(position); // every draft was kept: the last position gives one more token
        break;
      }
      const verdict = row.acceptDraft(position, drafts[j]);
      isLive = verdict.isLive;
      if (!verdict.isAccepted) break;
      numAccepted++;
    }
    if (!state) return isLive;
    if (state.mode === 'medusa') {
      if (drafts.length > 0) state.shadow = undefined;
      else if (isLive) this.checkShadow(state, row);
      state.guesses = isLive && headLogits ? this.guess(row, headLogits, j, vocabSize) : [];
      if (!state.shadow && drafts.length === 0 && state.guesses.length > 0) state.shadow = { ids: state.guesses.map((g) => g.id), matched: 0 };
    }
    state.drafted += drafts.length;
    state.accepted += numAccepted;
    state.numRejected = drafts.length - numAccepted;
    if (state.mode === 'draft' && drafts.length > 0) state.numDraftsNext = this.nextNumDrafts(drafts.length, numAccepted);
    this.record(state.mode, drafts.length, numAccepted);
    return isLive;
  }

  /**
   * A step without drafts decoded one token: the next of the shadow guesses, or not. The
   * record gets what drafting them would have had accepted: all of them, or those before
   * the first wrong one.
   */
  private checkShadow(state: RowSpeculation, row: RowDecoder): void {
    const shadow = state.shadow;
    if (!shadow) return;
    if (row.tokens.at(-1)?.id === shadow.ids[shadow.matched] && ++shadow.matched < shadow.ids.length) return; // still going
    this.record(state.mode, shadow.ids.length, shadow.matched);
    state.shadow = undefined;
  }

  /** The heads' drafts at `position`: head k's token for k+1 after the next, each drawn with the row's sampler. */
  private guess(row: RowDecoder, headLogits: Float32Array, position: number, vocabSize: number): DraftToken[] {
    const drafts: DraftToken[] = [];
    const ids: number[] = [];
    const from = position * this.numHeads * vocabSize;
    for (let k = 0; k < this.numHeads; k++) {
      const draft = row.proposeDraft(headLogits.subarray(from + k * vocabSize, from + (k + 1) * vocabSize), ids);
      drafts.push(draft);
      if (row.isEos(draft.id)) break;
      ids.push(draft.id);
    }
    return drafts;
  }

  private paysAtLoad(mode: SpeculativeMode): boolean {
    const recent = this.recent.get(mode);
    // Medusa guesses cost no call, so heads start out trusted until their record says otherwise;
    // the other modes must first show their acceptance at low load.
    if (recent === undefined || recent.drafted === 0) return mode === 'medusa';
    return recent.accepted / recent.drafted >= MIN_ACCEPTANCE_AT_LOAD[mode];
  }

  private record(mode: SpeculativeMode, numDrafted: number, numAccepted: number): void {
    if (numDrafted === 0) return;
    const recent = this.recent.get(mode) ?? { drafted: 0, accepted: 0 };
    this.recent.set(mode, { drafted: DECAY * recent.drafted + numDrafted, accepted: DECAY * recent.accepted + numAccepted });
  }

  /**
   * Draft-model calls cost a step each, so k follows the row's luck: two more after a
   * step that kept every draft, one fewer after a rejection (between 1 and 2 × speculativeDrafts).
   */
  private nextNumDrafts(numDrafted: number, numAccepted: number): number {
    const { speculativeDrafts } = this.config;
    return numAccepted === numDrafted ? Math.min(2 * speculativeDrafts, numDrafted + 2) : Math.max(1, numDrafted - 1);
  }

  /** After a failed step: every row's cache is gone, and so is the drafter's batch. */
  reset(): void {
    for (const id of this.rows.keys()) this.restart(id);
    this.drafter?.reset();
  }

  async release(): Promise<void> {
    await this.drafter?.release();
  }
}

function draftRowOf(entry: SpeculatingRow): DraftRow {
  const { row } = entry;
  return {
    id: entry.id,
    sequence: row.sequence,
    embedding: entry.embedding,
    isEos: (id) => row.isEos(id),
    propose: (logits, drafted) => row.proposeDraft(logits, drafted),
  };
}

/** Drafts up to and including the first end-of-sequence token. */
function throughEos(row: RowDecoder, drafts: DraftToken[]): DraftToken[] {
  const end = drafts.findIndex((d) => row.isEos(d.id));
  return end < 0 ? drafts : drafts.slice(0, end + 1);
}
