// Where a thread's JavaScript-side CPU goes, from a V8 .cpuprofile (node --cpu-prof): each
// sample's self time is put in a category by its stack. onnxruntime's native run, GC, idle
// and "(program)" by the leaf; otherwise by the frame nearest the leaf that belongs to a
// known package or source folder (so node:buffer under src/images/base64.ts counts as the
// request's body handling, node:stream under @whatwg-node as yoga). Stacks with no such
// frame are node core (HTTP parser, timers, streams called from the event loop itself).
// Adopted from ../shared/perf/cpuprofile-split.mjs; the categories are the benchmark's
// breakdown rows (breakdown.ts).
import { readFileSync } from 'node:fs';

/** The breakdown's buckets for a thread's non-onnxruntime time. */
export type ProfileBucket = 'onnxruntime' | 'image' | 'engine' | 'http' | 'gc' | 'other' | 'idle';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
export interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

/** Ordered rules: the first that matches the frame nearest the leaf wins. */
const RULES: readonly [ProfileBucket, RegExp][] = [
  ['http', /src\/server\/intake\/base64\.ts/], // the request body's base64, decoded in the API layer
  ['image', /src\/server\/intake\/|\/vision\/|node_modules\/(dataloader|sharp)\//], // intake probe, hashing, loader, sharp
  ['other', /bench\/perf\/(probe|threadcpu)\.mjs/], // the measurement itself
  ['engine', /onnxruntime-(common|node)\/|\/text\/|src\/engine\/|src\/model\/|\/fusion\/|@huggingface\/tokenizers/],
  ['http', /node_modules\/graphql\/|\/schema\/|src\/server\/|src\/plugins\/|src\/http\/|prom-client|graphql-yoga|@graphql-yoga|@whatwg-node|@envelop|@graphql-tools|graphql-ws|@repeaterjs|dset|lru-cache|urlpattern/],
  ['other', /node_modules\//],
];

function bucketOf(stack: readonly CallFrame[]): ProfileBucket {
  const leaf = stack[stack.length - 1];
  if (leaf.functionName === '(garbage collector)') return 'gc';
  if (leaf.functionName === '(idle)') return 'idle';
  if (leaf.functionName === '(program)') return 'other';
  // A native callback has no frame of its own: session.run's native time is the self time
  // of its caller (the probe's run, or onnxruntime-node's backend callback).
  if (leaf.functionName === 'run' && /probe\.mjs/.test(leaf.url)) return 'onnxruntime';
  if (/onnxruntime-node\/dist\/backend\.js/.test(leaf.url) && leaf.functionName === '') return 'onnxruntime';
  for (let i = stack.length - 1; i >= 0; i--) {
    for (const [bucket, re] of RULES) if (re.test(stack[i].url)) return bucket;
  }
  return 'http'; // node core with no application frame: HTTP parsing, sockets, timers, streams
}

/** µs of self time per bucket, for the samples inside `window` (µs of CLOCK_MONOTONIC) when given. */
export function profileBuckets(profile: CpuProfile, window?: readonly [number, number]): Record<ProfileBucket, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const bucketById = new Map<number, ProfileBucket>();
  const bucketFor = (id: number): ProfileBucket => {
    let b = bucketById.get(id);
    if (b) return b;
    const stack: CallFrame[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.unshift(byId.get(at)!.callFrame);
    b = bucketOf(stack);
    bucketById.set(id, b);
    return b;
  };
  const out: Record<ProfileBucket, number> = { onnxruntime: 0, image: 0, engine: 0, http: 0, gc: 0, other: 0, idle: 0 };
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (window && (t < window[0] || t > window[1])) continue;
    out[bucketFor(profile.samples[i])] += profile.timeDeltas[i + 1] ?? 0; // the interval after sample i
  }
  return out;
}

/** Shares of the busy, non-onnxruntime time (they sum to 1), or undefined when there were no such samples. */
export function nonOrtShares(buckets: Record<ProfileBucket, number>): Record<'image' | 'engine' | 'http' | 'gc' | 'other', number> | undefined {
  const keys = ['image', 'engine', 'http', 'gc', 'other'] as const;
  const total = keys.reduce((s, k) => s + buckets[k], 0);
  if (total <= 0) return undefined;
  return Object.fromEntries(keys.map((k) => [k, buckets[k] / total])) as Record<(typeof keys)[number], number>;
}

export function readProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
}
