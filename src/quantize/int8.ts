// Symmetric int8 weight quantization: zero point 0, range [-127, 127] (not -128, so the
// grid is symmetric and negating a weight never saturates). Pure functions on flat
// row-major arrays, tested without a model.

export interface Int8Weights {
  values: Int8Array; // same layout as the float input
  scales: Float32Array; // one per column (per-column) or per row (per-row)
}

function quantizeValue(x: number, scale: number): number {
  return Math.max(-127, Math.min(127, Math.round(x / scale)));
}

/** A zero column still needs a usable scale; any positive value dequantizes it to 0. */
function scaleFor(maxAbs: number): number {
  return maxAbs > 0 ? maxAbs / 127 : 1;
}

/** [rows, cols] → one scale per column: the layout of a MatMul's B (K × N, per output N). */
export function quantizePerColumn(w: Float32Array, rows: number, cols: number): Int8Weights {
  if (w.length !== rows * cols) throw new RangeError(`quantizePerColumn: ${w.length} values are not ${rows} × ${cols}`);
  const maxAbs = new Float32Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) maxAbs[c] = Math.max(maxAbs[c], Math.abs(w[r * cols + c]));
  const scales = maxAbs.map(scaleFor);
  const values = new Int8Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) values[r * cols + c] = quantizeValue(w[r * cols + c], scales[c]);
  return { values, scales };
}

/** [rows, cols] → one scale per row: an embedding table (one row per token) or a Conv weight (one per output channel). */
export function quantizePerRow(w: Float32Array, rows: number, cols: number): Int8Weights {
  if (w.length !== rows * cols) throw new RangeError(`quantizePerRow: ${w.length} values are not ${rows} × ${cols}`);
  const scales = new Float32Array(rows);
  const values = new Int8Array(w.length);
  for (let r = 0; r < rows; r++) {
    let maxAbs = 0;
    for (let c = 0; c < cols; c++) maxAbs = Math.max(maxAbs, Math.abs(w[r * cols + c]));
    scales[r] = scaleFor(maxAbs);
    for (let c = 0; c < cols; c++) values[r * cols + c] = quantizeValue(w[r * cols + c], scales[r]);
  }
  return { values, scales };
}

/** Largest |w - dequantized(w)| relative to the largest |w| (for reports and tests). */
export function relativeError(w: Float32Array, q: Int8Weights, scaleOf: (index: number) => number): number {
  let worst = 0;
  let maxAbs = 0;
  for (let i = 0; i < w.length; i++) {
    worst = Math.max(worst, Math.abs(w[i] - q.values[i] * scaleOf(i)));
    maxAbs = Math.max(maxAbs, Math.abs(w[i]));
  }
  return maxAbs === 0 ? 0 : worst / maxAbs;
}
