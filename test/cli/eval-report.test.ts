// The spec's quality bars as `iris eval` judges a report: 95 / 95 / 90 on the 128 px PNG,
// at most 1 point lower (94 / 94 / 89) on the other variants; drops below the PNG's own
// figures are reported, not judged.
import { describe, expect, it } from 'vitest';
import { meetsSpec, type EvalReport, type VariantScores } from '../../src/cli/eval-report.ts';

const scores = (caption: number, answer: number, kind: number): VariantScores => ({
  scenes: 1000, caption, answer, questions: 4000, continuation: 97, by_kind: { count: 99, exists: kind },
});
const report = (variants: Record<string, VariantScores>): EvalReport => ({ model: 'm', folder: 'f', measuredWith: 'test', date: '2026-11-27', variants });

describe('meetsSpec', () => {
  it('passes the bars, and the bars minus one point on the other variants', () => {
    const verdict = meetsSpec(report({ png128: scores(97.6, 99.7, 95), jpeg64: scores(94, 94, 89), jpeg256: scores(97.7, 99.7, 96) }));
    expect(verdict.isMet).toBe(true);
    expect(verdict.summary).toContain('spec quality bars: met');
    expect(verdict.summary).toContain('largest drop below png128: jpeg64 exists −6.00; jpeg256 none');
  });

  it('names each figure under its bar', () => {
    const verdict = meetsSpec(report({ png128: scores(94.9, 99, 95), jpeg64: scores(93.9, 94, 88.9), jpeg256: scores(96, 93.99, 95) }));
    expect(verdict.isMet).toBe(false);
    expect(verdict.summary).toContain('png128 caption 94.9 < 95');
    expect(verdict.summary).toContain('jpeg64 caption 93.9 < 94');
    expect(verdict.summary).toContain('jpeg64 exists 88.9 < 89');
    expect(verdict.summary).toContain('jpeg256 answer 93.99 < 94');
    expect(verdict.summary).not.toContain('jpeg256 caption');
  });
});
