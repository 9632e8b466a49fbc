// A small seeded PRNG owned by each request: same seed, same draws, no global Math.random.
import { randomInt } from 'node:crypto';

export type Rng = () => number; // uniform in [0, 1)

/** mulberry32: 32-bit state, fast, and good enough for sampling tokens. */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fresh seed for requests that did not ask for one (reported back so runs can be replayed). */
export function randomSeed(): number {
  return randomInt(0, 2 ** 32 - 1);
}
