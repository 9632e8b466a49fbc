// Stop strings over streamed text: report a match, and hold back any tail that could still
// become the start of one, so a stream never shows text that the final result cuts off.

export interface StopCheck {
  /** Text that is safe to show now. */
  emit: string;
  isStopped: boolean;
}

export class StopStringMatcher {
  private pending = '';
  private shown = '';

  constructor(private readonly stops: readonly string[]) {}

  push(delta: string): StopCheck {
    this.pending += delta;
    const hit = firstMatch(this.pending, this.stops);
    if (hit >= 0) {
      const emit = this.pending.slice(0, hit);
      this.shown += emit;
      this.pending = '';
      return { emit, isStopped: true };
    }
    const keep = longestPartialSuffix(this.pending, this.stops);
    const emit = this.pending.slice(0, this.pending.length - keep);
    this.shown += emit;
    this.pending = this.pending.slice(this.pending.length - keep);
    return { emit, isStopped: false };
  }

  /** Generation ended without a match: the held-back tail is ordinary text after all. */
  flush(): string {
    const rest = this.pending;
    this.shown += rest;
    this.pending = '';
    return rest;
  }

  get text(): string {
    return this.shown;
  }
}

function firstMatch(text: string, stops: readonly string[]): number {
  let best = -1;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0 && (best < 0 || at < best)) best = at;
  }
  return best;
}

function longestPartialSuffix(text: string, stops: readonly string[]): number {
  let keep = 0;
  for (const s of stops) {
    for (let len = Math.min(s.length - 1, text.length); len > keep; len--) {
      if (text.endsWith(s.slice(0, len))) {
        keep = len;
        break;
      }
    }
  }
  return keep;
}
