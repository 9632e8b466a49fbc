// The ByteStore of the shared embedding cache on Redis (node-redis). A cache, not a
// store of record: a lookup that fails, or takes longer than timeoutMs, is reported as
// such and the request goes on to encode; writes are sent without waiting. While Redis is
// unreachable the client reconnects in the background and lookups fail at once (no
// offline queue), so a Redis outage costs hits, never requests and never time.
import { createClient, RESP_TYPES } from 'redis';
import type { CacheConfig } from '../config/config.ts';
import type { ByteStore, StoreLookup } from '../engine/shared-embeddings.ts';

export interface RedisStore extends ByteStore {
  /** Connected and answering commands. */
  isReady(): boolean;
  close(): Promise<void>;
}

export interface RedisStoreOptions {
  /** Reconnection and client errors, throttled to one line per kind per minute; console.warn by default. */
  readonly warn?: (message: string) => void;
}

/** Lookups in flight beyond this fail at once: a Redis that stopped answering must not pile commands up. */
const MAX_IN_FLIGHT = 256;
const WARN_EVERY_MS = 60_000;

export function createRedisStore(config: Pick<CacheConfig, 'redisTimeoutMs' | 'redisTtlSeconds' | 'redisMaxValueBytes'> & { redisUrl: string }, options: RedisStoreOptions = {}): RedisStore {
  const warn = throttled(options.warn ?? ((m: string) => console.warn(`iris: warning: ${m}`)));
  const client = createClient({
    url: config.redisUrl,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: Math.max(1_000, config.redisTimeoutMs * 10),
      // Keep trying, at most every 2 s: Redis coming back restores the hits.
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), 2_000),
    },
  }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  // Without a listener an 'error' event would crash the process.
  client.on('error', (error: Error) => warn(`redis ${redact(config.redisUrl)}: ${error.message}`));
  let isClosed = false;
  client.connect().catch((error: Error) => warn(`redis ${redact(config.redisUrl)}: ${error.message}`));
  let inFlight = 0;

  const get = async (keys: readonly string[]): Promise<StoreLookup> => {
    if (keys.length === 0) return { values: [] };
    if (isClosed || !client.isReady || inFlight >= MAX_IN_FLIGHT) return { failure: 'error' };
    inFlight++;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<StoreLookup>((resolve) => {
      timer = setTimeout(() => resolve({ failure: 'timeout' }), config.redisTimeoutMs);
    });
    const lookup = client.mGet([...keys]).then(
      (values): StoreLookup => ({ values: values.map((v) => (v === null ? undefined : (v as unknown as Buffer))) }),
      (): StoreLookup => ({ failure: 'error' }),
    );
    void lookup.finally(() => inFlight--);
    try {
      return await Promise.race([lookup, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };

  const set = (key: string, value: Uint8Array): boolean => {
    if (isClosed || !client.isReady || value.byteLength > config.redisMaxValueBytes) return false;
    client.set(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength), { expiration: { type: 'EX', value: config.redisTtlSeconds } }).catch(() => undefined);
    return true;
  };

  return {
    get,
    set,
    isReady: () => !isClosed && client.isReady,
    async close() {
      if (isClosed) return;
      isClosed = true;
      // destroy(): no waiting for replies from a Redis that may not answer.
      if (client.isOpen) client.destroy();
    },
  };
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

function throttled(write: (message: string) => void): (message: string) => void {
  const last = new Map<string, number>();
  return (message) => {
    const kind = message.replace(/\d+/g, '#');
    const now = Date.now();
    if (now - (last.get(kind) ?? -Infinity) < WARN_EVERY_MS) return;
    last.set(kind, now);
    write(message);
  };
}
