// Prompt lookup: draft the tokens that followed the most recent earlier occurrence of the
// sequence's last n tokens (n from maxN down to 1), in the prompt or the text so far.
// Pure and cheap: no model, a few comparisons per position.

/** Up to `numDrafts` ids continuing `sequence` (prompt + generated), or none when nothing matches. */
export function proposeNgram(sequence: ArrayLike<number>, numDrafts: number, maxN = 3): Int32Array {
  const len = sequence.length;
  for (let n = Math.min(maxN, len - 1); n >= 1; n--) {
    const at = lastEarlierMatch(sequence, n);
    if (at < 0) continue;
    const from = at + n;
    const count = Math.min(numDrafts, len - from);
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) out[i] = sequence[from + i];
    return out;
  }
  return new Int32Array(0);
}

/** Start of the latest occurrence of the last n tokens that ends before the sequence does. */
function lastEarlierMatch(sequence: ArrayLike<number>, n: number): number {
  const len = sequence.length;
  for (let start = len - n - 1; start >= 0; start--) {
    let isMatch = true;
    for (let j = 0; j < n && isMatch; j++) isMatch = sequence[start + j] === sequence[len - n + j];
    if (isMatch) return start;
  }
  return -1;
}
