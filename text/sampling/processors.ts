// Logits processors: pure functions, each returns a new array ([vocab] float32 logits in,
// [vocab] out). Masked-out tokens become -Infinity. Composition order lives in sampler.ts.

/** CTRL-style penalty on every token already seen: divide positive logits, multiply negative. */
export function penalizeRepetition(logits: Float32Array, history: ArrayLike<number>, penalty: number): Float32Array {
  const out = logits.slice();
  const seen = new Set<number>(Array.from(history));
  for (const id of seen) {
    if (id < 0 || id >= out.length) continue;
    out[id] = out[id] > 0 ? out[id] / penalty : out[id] * penalty;
  }
  return out;
}

/** Ids that would complete an n-gram already present in history (HF's no_repeat_ngram_size). */
export function repeatedNgramIds(history: ArrayLike<number>, n: number): Set<number> {
  const banned = new Set<number>();
  const len = history.length;
  if (n <= 0 || len < n) return banned;
  // the last n-1 tokens; any earlier occurrence of them predicts a banned next token
  for (let start = 0; start + n <= len; start++) {
    let isMatch = true;
    for (let j = 0; j < n - 1 && isMatch; j++) isMatch = history[start + j] === history[len - n + 1 + j];
    if (isMatch) banned.add(history[start + n - 1]);
  }
  return banned;
}

export function suppressIds(logits: Float32Array, ids: Iterable<number>): Float32Array {
  const out = logits.slice();
  for (const id of ids) if (id >= 0 && id < out.length) out[id] = -Infinity;
  return out;
}

/**
 * Divides by the temperature relative to the largest logit, which so stays 0: a plain
 * `v / T` overflows float32 for a tiny T (1e-40 makes every logit ±Infinity, and softmax
 * NaN), while `(v - max) / T` only sends the others to -Infinity, the greedy limit.
 * Softmax is unchanged by the shift.
 */
export function scaleByTemperature(logits: Float32Array, temperature: number): Float32Array {
  const max = maxOf(logits);
  if (max === -Infinity || !Number.isFinite(max)) return logits.slice();
  return logits.map((v) => (v - max) / temperature);
}

/** Keep the k largest logits (ties at the boundary are kept, as in HF). */
export function keepTopK(logits: Float32Array, k: number): Float32Array {
  if (k <= 0 || k >= logits.length) return logits.slice();
  const threshold = logits.slice().sort((a, b) => b - a)[k - 1];
  return logits.map((v) => (v < threshold ? -Infinity : v));
}

/** Keep the smallest most-probable set whose probability mass reaches p. */
export function keepTopP(logits: Float32Array, p: number): Float32Array {
  if (p >= 1) return logits.slice();
  const probs = softmax(logits);
  const order = argsortDescending(probs);
  const out = new Float32Array(logits.length).fill(-Infinity);
  let mass = 0;
  for (const id of order) {
    out[id] = logits[id];
    mass += probs[id];
    if (mass >= p) break;
  }
  return out;
}

/** Keep tokens whose probability is at least minP times the most likely token's. */
export function keepMinP(logits: Float32Array, minP: number): Float32Array {
  if (minP <= 0) return logits.slice();
  const probs = softmax(logits);
  const maxProb = Math.max(0, maxOf(probs));
  return logits.map((v, i) => (probs[i] < minP * maxProb ? -Infinity : v));
}

export function softmax(logits: Float32Array): Float64Array {
  const max = maxOf(logits);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp(logits[i] - max);
    sum += out[i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

export function logSoftmax(logits: Float32Array): Float64Array {
  const max = maxOf(logits);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logSum = max + Math.log(sum);
  return Float64Array.from(logits, (v) => v - logSum);
}

/** log softmax(logits)[id], without building the whole distribution: one pass for the max, one for the sum. */
export function logprobOf(logits: Float32Array, id: number): number {
  const max = maxOf(logits);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[id] - (max + Math.log(sum));
}

/** The largest value (Math.max semantics: NaN wins). Indexed loops here: for-of made an iterator per call, about 15 % of the engine's allocations on a loaded server. */
function maxOf(values: Float32Array | Float64Array): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i]);
  return max;
}

/** Index of the first maximum: the tie-break PyTorch's argmax and transformers.js use. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export function argsortDescending(values: ArrayLike<number>): number[] {
  return Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[b] - values[a] || a - b);
}
