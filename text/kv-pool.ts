// Backing arrays for the self-attention K/V a batch builds on the JavaScript side (new
// columns appended to the past, rows joined or dropped, speculative roll-backs), handed
// out again once the cache that held them is released. A decode step at 32 rows holds a
// few MB of K/V; allocating it anew every step made the collector the biggest cost
// outside onnxruntime. A batch needs a column more each step, so arrays are made with
// room to grow and a request for less takes the smallest free one that fits.
export type FloatData = Float32Array | Uint16Array;
type Ctor = new (n: number) => FloatData;

/** How much bigger than asked a new array is made (a few steps of growth). */
const GROWTH = 1.25;
/** A free array more than this many times the size asked is left for bigger requests. */
const MAX_SLACK = 4;

export class KvPool {
  private readonly free: FloatData[] = [];
  /** Arrays handed out again / made new, since the pool was created. */
  private numReused = 0;
  private numMade = 0;

  /** @param maxFree arrays kept for reuse; more are left to the collector. */
  constructor(private readonly maxFree = 64) {}

  /** Arrays waiting for reuse (tests, metrics). */
  get size(): number {
    return this.free.length;
  }

  /** How often `take` reused an array and how often it made one. */
  get counts(): { readonly reused: number; readonly made: number } {
    return { reused: this.numReused, made: this.numMade };
  }

  /** A view of `length` elements of `like`'s element type; zeroed unless the caller writes every one (`isOverwritten`). */
  take(like: FloatData, length: number, isOverwritten = false): FloatData {
    const ctor = like.constructor as Ctor;
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const a = this.free[i];
      if (a.constructor === ctor && a.length >= length && a.length <= length * MAX_SLACK && (best < 0 || a.length < this.free[best].length)) best = i;
    }
    if (best < 0) {
      this.numMade++;
      return new ctor(Math.ceil(length * GROWTH)).subarray(0, length);
    }
    this.numReused++;
    const array = this.free[best];
    this.free[best] = this.free[this.free.length - 1];
    this.free.pop();
    const view = array.subarray(0, length);
    if (!isOverwritten) view.fill(0);
    return view;
  }

  /** Give back a view `take` returned; its contents may be overwritten from now on. */
  give(view: FloatData): void {
    const whole = new (view.constructor as new (b: ArrayBufferLike) => FloatData)(view.buffer);
    this.free.push(whole);
    if (this.free.length > this.maxFree) {
      let smallest = 0;
      for (let i = 1; i < this.free.length; i++) if (this.free[i].length < this.free[smallest].length) smallest = i;
      this.free.splice(smallest, 1);
    }
  }
}
