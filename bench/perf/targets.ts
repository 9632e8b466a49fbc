// Issue 12's targets as ratios with pass/fail, from one run's figures (medians over rounds).
// A figure that was not measured (NaN) fails: a target is met only when shown to be.

export interface Figures {
  /** Captions over HTTP (SSE for Iris): requests/s and p50 latency, ms. */
  captions: Record<'c1' | 'c32', Record<'iris' | 'tjs', { requestsPerSecond: number; p50Ms: number }>>;
  /** Requests/s if each caption cost only its onnxruntime work at the best batch sizes. */
  captionBoundRequestsPerSecond: number;
  /** Iris's server CPU outside onnxruntime per caption at c32, ms. */
  outsideOrtMsC32: number;
  /** 48-token generations at c32, tokens/s. */
  generateC32: Record<'iris' | 'tjs', number>;
  /** One decoder thread's tokens/s at 32 rows (onnxruntime alone). */
  decodeBoundTokensPerSecond: number;
  /** Single client, captions: p50 latency plain and with each speculation the folder supports (NaN: not measured), ms. */
  speculativeP50Ms: { plain: number; draft: number; medusa: number };
}

export interface TargetResult {
  id: string;
  target: string;
  /** The measured ratio (or ms, for `outsideOrtMs`). */
  value: number;
  /** The bar: value ≥ bar, or ≤ bar when `atMost`. */
  bar: number;
  atMost: boolean;
  unit: '×' | '%' | 'ms';
  pass: boolean;
}

export function evaluateTargets(f: Figures): TargetResult[] {
  const t = (id: string, target: string, value: number, bar: number, unit: TargetResult['unit'], atMost = false): TargetResult => ({
    id, target, value, bar, atMost, unit, pass: Number.isFinite(value) && (atMost ? value <= bar : value >= bar),
  });
  const { c1, c32 } = f.captions;
  return [
    t('captionsC32VsTjs', 'captions at c32: Iris req/s ≥ 2× transformers.js', c32.iris.requestsPerSecond / c32.tjs.requestsPerSecond, 2, '×'),
    t('captionsC32VsBound', 'captions at c32: ≥ 15 % of the onnxruntime-only bound', c32.iris.requestsPerSecond / f.captionBoundRequestsPerSecond, 0.15, '%'),
    t('captionsC1Rps', 'single client: Iris req/s ≥ transformers.js', c1.iris.requestsPerSecond / c1.tjs.requestsPerSecond, 1, '×'),
    t('captionsC1P50', 'single client: Iris p50 ≤ transformers.js (ratio tjs/Iris)', c1.tjs.p50Ms / c1.iris.p50Ms, 1, '×'),
    t('outsideOrtMs', 'CPU outside onnxruntime at c32 ≤ 5 ms/request', f.outsideOrtMsC32, 5, 'ms', true),
    t('generateC32VsTjs', '48-token generations at c32: ≥ 3× transformers.js tok/s', f.generateC32.iris / f.generateC32.tjs, 3, '×'),
    t('generateC32VsBound', '48-token generations at c32: ≥ 38 % of the one-thread decode bound', f.generateC32.iris / f.decodeBoundTokensPerSecond, 0.38, '%'),
    // The issue's route past a draft model's fixed cost is Medusa heads: the target is theirs, the draft model's figure is shown beside it.
    t('speculativeP50', 'Medusa speculation, single client, captions: p50 ≥ 1.3× lower than plain', f.speculativeP50Ms.plain / f.speculativeP50Ms.medusa, 1.3, '×'),
  ];
}

/** "2.31× (≥ 2×) pass" and the like. */
export function formatTarget(r: TargetResult): string {
  const fmt = (x: number): string => (!Number.isFinite(x) ? 'n/a' : r.unit === '%' ? `${(100 * x).toFixed(1)} %` : r.unit === 'ms' ? `${x.toFixed(2)} ms` : `${x.toFixed(2)}×`);
  return `${fmt(r.value)} (${r.atMost ? '≤' : '≥'} ${r.unit === '%' ? `${100 * r.bar} %` : r.unit === 'ms' ? `${r.bar} ms` : `${r.bar}×`}) ${r.pass ? 'PASS' : 'FAIL'}`;
}
