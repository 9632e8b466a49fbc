// Seeded randomness: every simulated figure is reproducible from its seed.

export interface Rng {
  next(): number;
  exp(mean: number): number;
  int(n: number): number;
}

/** mulberry32: small, fast, good enough for a simulation. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    exp: (mean) => -mean * Math.log(1 - next()),
    int: (n) => Math.floor(next() * n),
  };
}

/** Draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s (s = 0: uniform), by binary search on the CDF. */
export function createZipf(n: number, s: number, rng: Rng): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / Math.pow(k + 1, s);
  return () => {
    const u = rng.next() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** A min-heap of timed events. */
export class EventQueue<T> {
  private readonly items: Array<{ t: number; seq: number; v: T }> = [];
  private seq = 0;
  get size(): number {
    return this.items.length;
  }
  push(t: number, v: T): void {
    const items = this.items;
    items.push({ t, seq: this.seq++, v });
    let i = items.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(items[p], items[i])) break;
      [items[p], items[i]] = [items[i], items[p]];
      i = p;
    }
  }
  pop(): { t: number; v: T } | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.less(items[l], items[m])) m = l;
        if (r < items.length && this.less(items[r], items[m])) m = r;
        if (m === i) break;
        [items[m], items[i]] = [items[i], items[m]];
        i = m;
      }
    }
    return { t: top.t, v: top.v };
  }
  private less(a: { t: number; seq: number }, b: { t: number; seq: number }): boolean {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }
}
