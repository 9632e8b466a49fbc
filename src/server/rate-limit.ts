// Per-client limits on requests and on generated tokens per minute, as token buckets: each
// client's bucket holds up to a minute's allowance and refills continuously, so a client
// may burst up to its allowance and then runs at the steady rate. A request takes one
// from the request bucket when it is admitted; the tokens it generated are taken from the
// token bucket when it finishes (which may run it into debt: the next request then waits
// until the debt is repaid). Refusals are RATE_LIMITED with the seconds to wait.
import { IrisError } from '../contract/types.ts';

export interface RateLimits {
  /** 0: unlimited. */
  readonly requestsPerMinute: number;
  /** 0: unlimited. */
  readonly tokensPerMinute: number;
}

export interface RateLimiter {
  readonly isLimited: boolean;
  /** Takes one request from the client's allowance, or throws RATE_LIMITED. */
  admit(client: string): void;
  /** Charges generated tokens to the client. */
  charge(client: string, tokens: number): void;
}

interface Bucket {
  level: number;
  updatedMs: number;
}

const MINUTE_MS = 60_000;
/** Beyond this many tracked clients, full (idle) buckets are forgotten. */
const PRUNE_AT = 10_000;

function createBuckets(perMinute: number, now: () => number) {
  const buckets = new Map<string, Bucket>();
  const perMs = perMinute / MINUTE_MS;
  const read = (client: string): Bucket => {
    const t = now();
    let bucket = buckets.get(client);
    if (!bucket) {
      if (buckets.size >= PRUNE_AT) for (const [id, b] of buckets) if (b.level + (t - b.updatedMs) * perMs >= perMinute) buckets.delete(id);
      bucket = { level: perMinute, updatedMs: t };
      buckets.set(client, bucket);
    }
    bucket.level = Math.min(perMinute, bucket.level + (t - bucket.updatedMs) * perMs);
    bucket.updatedMs = t;
    return bucket;
  };
  /** Whole seconds until the bucket holds `need`. */
  const waitSeconds = (bucket: Bucket, need: number): number => Math.max(1, Math.ceil((need - bucket.level) / perMs / 1000));
  return { read, waitSeconds };
}

function refuse(what: string, seconds: number): never {
  throw new IrisError('RATE_LIMITED', `rate limit of ${what} per minute reached; retry in ${seconds} s`, { retryAfterSeconds: seconds });
}

/** `now` in milliseconds (injectable so tests drive time by hand). */
export function createRateLimiter(limits: RateLimits, now: () => number = () => performance.now()): RateLimiter {
  const requests = limits.requestsPerMinute > 0 ? createBuckets(limits.requestsPerMinute, now) : undefined;
  const tokens = limits.tokensPerMinute > 0 ? createBuckets(limits.tokensPerMinute, now) : undefined;
  return {
    isLimited: requests !== undefined || tokens !== undefined,
    admit(client) {
      if (tokens) {
        const bucket = tokens.read(client);
        if (bucket.level < 1) refuse(`${limits.tokensPerMinute} generated tokens`, tokens.waitSeconds(bucket, 1));
      }
      if (requests) {
        const bucket = requests.read(client);
        if (bucket.level < 1) refuse(`${limits.requestsPerMinute} requests`, requests.waitSeconds(bucket, 1));
        bucket.level -= 1;
      }
    },
    charge(client, count) {
      if (tokens && count > 0) tokens.read(client).level -= count;
    },
  };
}
