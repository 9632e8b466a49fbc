// Who is calling, and whether they may: optional bearer API keys for GraphQL (HTTP and
// WebSocket) and /v1, a separate key for /metrics, and per-client rate limits. A client
// is its key (by position in the key list, never the key itself) or, when no keys are
// configured, its network address.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AccessConfig } from '../config/config.ts';
import { IrisError } from '../contract/types.ts';
import type { IrisServices } from '../../schema/generation.ts';
import { createRateLimiter, type RateLimiter } from './rate-limit.ts';

export interface Client {
  /** 'key-1', 'key-2', ... or 'ip-<address>'; safe to log. */
  readonly id: string;
}

export interface AccessControl {
  /** True when requests need a key. */
  readonly needsKey: boolean;
  /** The client behind an Authorization header (or a bare key), or UNAUTHENTICATED. */
  authenticate(authorization: string | null | undefined, address: string | undefined): Client;
  /** False when /metrics is protected and the header does not carry its key. */
  mayReadMetrics(authorization: string | null | undefined): boolean;
  /** Counts one request against the client's limits, or throws RATE_LIMITED. */
  admit(client: Client): void;
  /** The services one client's requests run on: generated tokens are charged to it. */
  servicesFor(services: IrisServices, client: Client | undefined): IrisServices;
  /** The client an earlier stage found for this request (HTTP). */
  clientOf(request: Request | undefined): Client | undefined;
  remember(request: Request, client: Client): void;
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** The key in `Bearer <key>` (or a bare key, as WebSocket connection params often carry it). */
export function bearerKey(authorization: string | null | undefined): string | undefined {
  if (!authorization) return undefined;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match ? match[1] : /^\S+$/.test(authorization) ? authorization : undefined;
}

/** Compares digests in constant time, so response timing does not reveal how much of a key matched. */
function findKey(key: string | undefined, digests: readonly Buffer[]): number {
  if (key === undefined) return -1;
  const d = digest(key);
  let found = -1;
  digests.forEach((k, i) => {
    if (timingSafeEqual(k, d)) found = i;
  });
  return found;
}

function unauthenticated(hasKey: boolean): IrisError {
  return new IrisError('UNAUTHENTICATED', hasKey ? 'the API key is not valid' : 'an API key is required: send Authorization: Bearer <key>');
}

export function createAccessControl(config: AccessConfig, limiter: RateLimiter = createRateLimiter(config)): AccessControl {
  const keys = config.apiKeys.map(digest);
  const metricsKey = config.metricsKey === undefined ? undefined : [digest(config.metricsKey)];
  const clients = new WeakMap<Request, Client>();
  const needsKey = keys.length > 0;
  return {
    needsKey,
    authenticate(authorization, address) {
      if (!needsKey) return { id: `ip-${address ?? 'unknown'}` };
      const key = bearerKey(authorization);
      const index = findKey(key, keys);
      if (index < 0) throw unauthenticated(key !== undefined);
      return { id: `key-${index + 1}` };
    },
    mayReadMetrics: (authorization) => !metricsKey || findKey(bearerKey(authorization), metricsKey) === 0,
    admit: (client) => limiter.admit(client.id),
    servicesFor(services, client) {
      if (!limiter.isLimited || !client) return services;
      const { registry } = services;
      const generate: typeof registry.generate = async (...args) => {
        const result = await registry.generate(...args);
        limiter.charge(client.id, result.usage.completionTokens);
        return result;
      };
      return { ...services, registry: { ...registry, generate } };
    },
    clientOf: (request) => (request ? clients.get(request) : undefined),
    remember: (request, client) => void clients.set(request, client),
  };
}
