// How far V8 lets an old generation grow past what the last full collection left before
// it starts the next one (a V8 flag: the whole process, image workers included, whose
// heaps are small). Under load, objects that outlive a request's ~100 ms are promoted
// out of the young generation at a steady rate, so the factor sets how often a full
// collection comes. V8's own factor (about 1.35 for a ~63 MB live heap at 32 clients)
// left the old generation less room than its young generation's capacity, and V8 then
// starts incremental marking from a task as soon as the last one ended. A server that
// fell into that tended to stay there: a full collection every ~100 ms, 7 to 10 per 256
// captions at 32 clients, 1.5 to 2.5 ms more CPU per caption in V8's marking threads
// (bench/perf/gc-rounds.ts: 6 of 16 rounds over 4 fresh servers; at 1.6, none of 16).
// Since GraphiQL's bundle is loaded only when its page is opened, the live heap under
// load is about half that, and the room is what counts: 1 to 3 full collections a round
// at 1.6, 1 to 2 at 2.0 (peak RSS 455-462 MB). See README's Performance section.
import { setFlagsFromString } from 'node:v8';

/** Sets V8's heap growing factor to 1 + percent/100 for the collections from now on; 0: V8's own. */
export function setHeapGrowing(percent: number, setFlags: (flags: string) => void = setFlagsFromString): void {
  if (!Number.isInteger(percent) || percent < 0) throw new RangeError(`heap growing percent must be a whole number ≥ 0, got ${percent}`);
  setFlags(`--heap-growing-percent=${percent}`);
}
