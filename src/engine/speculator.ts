// Speculative decoding, the engine's side: which rows speculate this step, their drafts
// (prompt lookup here, or a Drafter running the small draft model), and judging the
// target's logits at each drafted position with the request's own sampler. Policy and
// plain numbers only; the runner verifies the drafts (verify-rows.ts) and rolls back.
import type { ResolvedOptions } from '../../text/sampling/options.ts';
import type { DraftToken } from '../../text/sampling/speculative.ts';
import { proposeNgram } from '../../text/speculative/ngram.ts';
import type { EngineConfig } from '../config/config.ts';
import { IrisError, type SpeculativeMode } from '../contract/types.ts';
import type { EngineRequest } from './request.ts';

/** The engine settings the speculator reads, validated by createEngineConfig. */
export type SpeculationConfig = Pick<EngineConfig, 'speculative' | 'speculativeMaxBatch' | 'speculativeDrafts'>;

/** Runs a draft model: k tokens for each row, drawn with the row's own sampler. */
export interface Drafter {
  propose(entries: readonly EngineRequest[], numDrafts: readonly number[]): Promise<DraftToken[][]>;
  /** Forget its batch (after a failed step). */
  reset(): void;
  release(): Promise<void>;
}

const NGRAM_MAX = 3;
/** Weight of past steps in a mode's recent acceptance rate. */
const DECAY = 0.98;
/** The recent acceptance rate a mode needs to keep speculating above speculativeMaxBatch rows. */
const MIN_ACCEPTANCE_AT_LOAD = 0.8;

export class Speculator {
  /** Decayed drafted/accepted counts per mode, for the switch-off at load. */
  private readonly recent = new Map<SpeculativeMode, { drafted: number; accepted: number }>();

  constructor(private readonly config: SpeculationConfig, private readonly drafter: Drafter | undefined) {
    if (config.speculative === 'draft' && !drafter) throw new IrisError('MODEL_NOT_FOUND', `speculative 'draft' needs a draft model (<model>/draft/onnx/decoder_model_merged.onnx), and this model has none`);
  }

  /** The request's mode; INVALID_OPTIONS for 'draft' without a draft model. */
  modeOf(options: ResolvedOptions): SpeculativeMode {
    const mode = options.speculative ?? this.config.speculative;
    if (mode === 'draft' && !this.drafter) throw new IrisError('INVALID_OPTIONS', `speculative 'draft' needs a draft model, and this model has none; use 'ngram' or 'off'`);
    return mode;
  }

  /**
   * Set each decode row's drafts for this step, at most maxDraftsPerRow each. At load
   * (more than speculativeMaxBatch rows) a step is compute-bound and rejected drafts cost
   * throughput, so only a mode whose recent drafts were mostly accepted keeps
   * speculating there.
   */
  async propose(decode: readonly EngineRequest[], maxDraftsPerRow = Infinity): Promise<void> {
    const isLoaded = decode.length > this.config.speculativeMaxBatch;
    const drafting: EngineRequest[] = [];
    const counts: number[] = [];
    for (const entry of decode) {
      entry.drafts = [];
      if (entry.speculative === 'off' || (isLoaded && !this.paysAtLoad(entry.speculative))) continue;
      const count = Math.min(entry.numDraftsNext || this.config.speculativeDrafts, entry.maxTokens - entry.numTokens - 1, maxDraftsPerRow);
      if (count <= 0) continue;
      if (entry.speculative === 'ngram') entry.drafts = throughEos(entry, Array.from(proposeNgram(entry.row.sequence, count, NGRAM_MAX), (id) => ({ id })));
      else {
        drafting.push(entry);
        counts.push(count);
      }
    }
    if (drafting.length === 0 || !this.drafter) return;
    const drafts = await this.drafter.propose(drafting, counts);
    drafting.forEach((entry, i) => (entry.drafts = throughEos(entry, drafts[i])));
  }

  /** Judge the drafts against the target's logits ([drafts + 1, vocab]); false once the row has finished. */
  accept(entry: EngineRequest, logits: Float32Array, vocabSize: number): boolean {
    const { drafts, row } = entry;
    let numAccepted = 0;
    let isLive = true;
    for (let j = 0; isLive; j++) {
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
    entry.numDrafted += drafts.length;
    entry.numAccepted += numAccepted;
    entry.numRejected = drafts.length - numAccepted;
    if (entry.speculative === 'draft' && drafts.length > 0) entry.numDraftsNext = this.nextNumDrafts(drafts.length, numAccepted);
    this.record(entry.speculative, drafts.length, numAccepted);
    return isLive;
  }

  private paysAtLoad(mode: SpeculativeMode): boolean {
    const recent = this.recent.get(mode);
    return recent !== undefined && recent.drafted > 0 && recent.accepted / recent.drafted >= MIN_ACCEPTANCE_AT_LOAD;
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
    return numAccepted === numDrafted ? Math.min(2 * this.config.speculativeDrafts, numDrafted + 2) : Math.max(1, numDrafted - 1);
  }

  reset(): void {
    this.drafter?.reset();
  }

  async release(): Promise<void> {
    await this.drafter?.release();
  }
}

/** Drafts up to and including the first end-of-sequence token. */
function throughEos(entry: EngineRequest, drafts: DraftToken[]): DraftToken[] {
  const end = drafts.findIndex((d) => entry.row.isEos(d.id));
  return end < 0 ? drafts : drafts.slice(0, end + 1);
}
