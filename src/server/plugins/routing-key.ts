// The routing key: balancers cannot read a GraphQL body cheaply, so clients may send the
// sha256 of their image's bytes in `x-iris-image-key` and a balancer hashes on it
// (deploy/haproxy/haproxy.cfg: `balance hdr(x-iris-image-key)`, `hash-type consistent`),
// pinning each image to the replica whose embedding cache holds it.
//
// Iris never trusts the header: when the request's image is read, the plugin computes the
// same content hash the embedding cache keys on (vision/embedding-cache.ts contentHash),
// compares, and ignores a wrong key; a bad key costs locality, never correctness. The
// response carries the key Iris computed, so a client can learn it from its first request.
// Streamed responses (SSE, multipart) send their headers before the image is read and so
// carry no key; a document that reads several different images gets them all,
// comma-separated, in the order they were read.
import type { Plugin } from 'graphql-yoga';
import { contentHash } from '../../../vision/embedding-cache.ts';
import type { IrisContext } from '../../../schema/index.ts';
import type { ImageIntake } from '../intake/intake.ts';

export const ROUTING_KEY_HEADER = 'x-iris-image-key';

const KEY_SHAPE = /^[0-9a-f]{64}$/;

export interface RoutingKeyCheck {
  /** What the client sent, trimmed and lower-cased, or null without a (well-formed) header. */
  readonly claimed: string | null;
  /** Content hashes of the images the request read, distinct, in reading order. */
  readonly computed: readonly string[];
  /** True when the client sent a key and it was not the hash of the (first) image read. */
  readonly mismatch: boolean;
}

export interface RoutingKeyOptions {
  /** Called once per request that read an image, e.g. to count wrong keys. */
  readonly onCheck?: (check: RoutingKeyCheck) => void;
}

interface State {
  readonly claimed: string | null;
  readonly computed: string[];
}

export function claimedKey(header: string | null): string | null {
  const key = header?.trim().toLowerCase() ?? '';
  return KEY_SHAPE.test(key) ? key : null;
}

export function useRoutingKey(options: RoutingKeyOptions = {}): Plugin<Partial<IrisContext>> {
  const states = new WeakMap<Request, State>();
  return {
    onContextBuilding({ context, extendContext }) {
      const iris = context.iris;
      const request = (context as { request?: Request }).request;
      if (!iris || !request) return;
      const state: State = { claimed: claimedKey(request.headers.get(ROUTING_KEY_HEADER)), computed: [] };
      states.set(request, state);
      const intake: ImageIntake = {
        async read(input, signal) {
          const image = await iris.intake.read(input, signal);
          const key = contentHash(image.bytes);
          if (!state.computed.includes(key)) state.computed.push(key);
          return image;
        },
      };
      extendContext({ iris: { ...iris, intake } } as Partial<Partial<IrisContext>>);
    },
    onResponse({ request, response }) {
      const state = states.get(request);
      if (!state || state.computed.length === 0) return;
      options.onCheck?.({
        claimed: state.claimed,
        computed: [...state.computed],
        mismatch: state.claimed !== null && state.claimed !== state.computed[0],
      });
      if (!response.headers.has(ROUTING_KEY_HEADER)) response.headers.set(ROUTING_KEY_HEADER, state.computed.join(','));
    },
  };
}
