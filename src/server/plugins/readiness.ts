// GET /ready: 200 once no model is loading and at least one serves, 503 before (or if
// every model failed, or while draining), with each model's state and detail (why it
// failed, what is degraded) so an operator sees what is missing.
// GET /health (liveness) is yoga's built-in endpoint.
//
// yoga's useReadinessCheck tests every request's URL against a URLPattern (the polyfill,
// about 0.1 ms per request) once the cheap checks miss, which is every GraphQL request;
// the path compared with the parsed URL's pathname says the same for /ready.
import type { Plugin } from 'graphql-yoga';
import type { ModelRegistry } from '../registry.ts';
import type { Drain } from './drain.ts';

export function useModelReadiness(registry: Pick<ModelRegistry, 'isReady' | 'list'>, drain?: Pick<Drain, 'isDraining'>, endpoint = '/ready'): Plugin {
  return {
    onRequest({ url, endResponse }) {
      if (url.pathname !== endpoint) return;
      const isDraining = drain?.isDraining() ?? false;
      const isReady = registry.isReady() && !isDraining;
      const models = registry.list().map((m) => ({
        id: m.id,
        state: m.state,
        kind: m.kind,
        // A remote model: its health as last probed and what Iris has sent it, not local engine figures.
        ...(m.kind === 'remote' && m.state === 'ready' ? { healthy: m.healthy, inFlight: m.remote?.inFlight ?? 0 } : {}),
        ...(m.detail ? { detail: m.detail } : {}),
      }));
      endResponse(
        new Response(JSON.stringify({ ready: isReady, ...(isDraining ? { draining: true } : {}), models }), {
          status: isReady ? 200 : 503,
          headers: { 'content-type': 'application/json; charset=utf-8' },
        }),
      );
    },
  };
}
