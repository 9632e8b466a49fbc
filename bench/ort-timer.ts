// Time spent inside onnxruntime's session.run, for the benchmarks' "non-ORT share". The
// sessions are private to their runners, so this wraps InferenceSession.prototype.run
// once per process: a benchmark-only probe that leaves the source tree untouched.
import * as ort from 'onnxruntime-node';

export interface OrtTimes {
  /**
   * Wall ms with at least one session.run in flight: the union of the calls' intervals.
   * onnxruntime-node runs a session synchronously from a setImmediate callback, so two
   * calls in flight (the encoder and the decoder) queue behind each other; summing them
   * would count the wait twice. With one call at a time (batch 1) this is exact.
   */
  runMs: number;
  /** The same for the decoder's calls alone, and for the vision encoder's. */
  decoderMs: number;
  encoderMs: number;
  numRuns: number;
}

type Kind = 'decoderMs' | 'encoderMs';

const times: OrtTimes = { runMs: 0, decoderMs: 0, encoderMs: 0, numRuns: 0 };
const busyUntil = { runMs: 0, decoderMs: 0, encoderMs: 0 };
let isInstalled = false;

function addUnion(field: Kind | 'runMs', started: number, ended: number): void {
  times[field] += Math.max(0, ended - Math.max(started, busyUntil[field]));
  busyUntil[field] = Math.max(busyUntil[field], ended);
}

export function installOrtTimer(): void {
  if (isInstalled) return;
  isInstalled = true;
  // The typings declare a factory, not a class; at run time it is the session class.
  const proto = (ort.InferenceSession as unknown as { prototype: { run: (...args: unknown[]) => Promise<unknown> } }).prototype;
  const run = proto.run;
  proto.run = async function timedRun(this: unknown, ...args: unknown[]): Promise<unknown> {
    const kind: Kind = typeof args[0] === 'object' && args[0] !== null && 'pixel_values' in args[0] ? 'encoderMs' : 'decoderMs';
    const started = performance.now();
    try {
      return await run.apply(this, args);
    } finally {
      const ended = performance.now();
      addUnion('runMs', started, ended);
      addUnion(kind, started, ended);
      times.numRuns++;
    }
  };
}

/** A copy of the counters; subtract two snapshots to time a section. */
export function ortTimes(): OrtTimes {
  return { ...times };
}
