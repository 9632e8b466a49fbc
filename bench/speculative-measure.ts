// Speed of speculative decoding measured in one process, in interleaved rounds (the
// machine is shared; each figure is the best round, with the median next to it): one
// request at a time with speculation off, with the draft model and with n-gram drafts,
// then 32 concurrent requests with speculation on and off.
import { createEngine } from '../src/engine/create-engine.ts';
import type { Engine } from '../src/engine/engine.ts';
import type { GenerationRequest, GenerationResult, SpeculativeMode } from '../src/contract/types.ts';
import { median } from './measure.ts';

export interface ModeFigures {
  /** Tokens after the first per second of decode time, one request at a time. */
  singleDecodeTokensPerSecond: { best: number; median: number };
  /** Accepted / drafted over all single-stream requests. */
  acceptanceRate: number | null;
  drafted: number;
  accepted: number;
}

export interface ConcurrentFigures {
  /** Generated tokens per second of wall time, 32 requests at once, by setting. */
  tokensPerSecond: Record<string, { best: number; median: number }>;
}

export interface SpeculativeOptions {
  modelDir: string;
  draftDir?: string;
  threads: number;
  rounds: number;
  /** Running rows above which speculation pauses unless mostly accepted. */
  speculativeMaxBatch: number;
  /** Tokens drafted per step (the engine config's default when absent). */
  speculativeDrafts?: number;
}

const summary = (xs: number[]) => ({ best: Math.max(...xs), median: median(xs) });

async function singleRound(engine: Engine, requests: readonly GenerationRequest[], mode: SpeculativeMode): Promise<GenerationResult[]> {
  const results: GenerationResult[] = [];
  for (const r of requests) results.push(await engine.generate({ ...r, options: { ...r.options, speculative: mode } }));
  return results;
}

/** Decode tokens per second over a round: tokens after the first, over the decode time. */
function decodeRate(results: readonly GenerationResult[]): number {
  const tokens = results.reduce((n, r) => n + r.tokens.length - 1, 0);
  return tokens / (results.reduce((ms, r) => ms + r.timings.decodeMs, 0) / 1000);
}

async function concurrentRound(engine: Engine, requests: readonly GenerationRequest[], mode: SpeculativeMode): Promise<number> {
  const started = performance.now();
  const batch = Array.from({ length: 32 }, (_, i) => requests[i % requests.length]);
  const results = await Promise.all(batch.map((r) => engine.generate({ ...r, options: { ...r.options, speculative: mode } })));
  return results.reduce((n, r) => n + r.tokens.length, 0) / ((performance.now() - started) / 1000);
}

export async function measureSpeculative(requests: readonly GenerationRequest[], modes: readonly SpeculativeMode[], options: SpeculativeOptions): Promise<{ modes: Record<string, ModeFigures>; concurrent: ConcurrentFigures; identical: boolean }> {
  const base = { modelDir: options.modelDir, draftDir: options.draftDir, threads: options.threads, maxBatchSize: 32, maxQueued: 64 };
  const engine = await createEngine({ ...base, speculativeMaxBatch: options.speculativeMaxBatch, speculativeDrafts: options.speculativeDrafts });
  const always = await createEngine({ ...base, speculativeMaxBatch: 32, speculativeDrafts: options.speculativeDrafts }); // never switches off
  const rates = new Map<SpeculativeMode, number[]>(modes.map((m) => [m, []]));
  const counts = new Map<SpeculativeMode, { drafted: number; accepted: number }>(modes.map((m) => [m, { drafted: 0, accepted: 0 }]));
  const settings = ['off', ...modes.filter((m) => m !== 'off').flatMap((m) => [m, `${m} always`])];
  const concurrent = new Map<string, number[]>(settings.map((s) => [s, []]));
  let identical = true;
  try {
    for (let round = 0; round <= options.rounds; round++) {
      const reference = await singleRound(engine, requests, 'off');
      for (const mode of modes) {
        const results = mode === 'off' ? reference : await singleRound(engine, requests, mode);
        identical &&= results.every((r, i) => r.tokens.map((t) => t.id).join() === reference[i].tokens.map((t) => t.id).join());
        if (round === 0) continue; // warm-up
        rates.get(mode)!.push(decodeRate(results));
        const c = counts.get(mode)!;
        for (const r of results) {
          c.drafted += r.timings.draftedTokens ?? 0;
          c.accepted += r.timings.acceptedTokens ?? 0;
        }
      }
      for (const setting of settings) {
        const [mode, isAlways] = [setting.split(' ')[0] as SpeculativeMode, setting.endsWith(' always')];
        const rate = await concurrentRound(isAlways ? always : engine, requests, mode);
        if (round > 0) concurrent.get(setting)!.push(rate);
      }
    }
  } finally {
    await Promise.all([engine.release(), always.release()]);
  }
  const figures = Object.fromEntries(modes.map((m) => {
    const { drafted, accepted } = counts.get(m)!;
    return [m, { singleDecodeTokensPerSecond: summary(rates.get(m)!), acceptanceRate: drafted > 0 ? accepted / drafted : null, drafted, accepted }];
  }));
  return { modes: figures, concurrent: { tokensPerSecond: Object.fromEntries([...concurrent].map(([s, xs]) => [s, summary(xs)])) }, identical };
}
