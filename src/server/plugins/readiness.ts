// GET /ready: 200 once no model is loading and at least one serves, 503 before (or if
// every model failed, or while draining), with each model's state and detail (why it
// failed, what is degraded) so an operator sees what is missing.
// GET /health (liveness) is yoga's built-in endpoint.
import { useReadinessCheck, type Plugin } from 'graphql-yoga';
import type { ModelRegistry } from '../registry.ts';
import type { Drain } from './drain.ts';

export function useModelReadiness(registry: Pick<ModelRegistry, 'isReady' | 'list'>, drain?: Pick<Drain, 'isDraining'>, endpoint = '/ready'): Plugin {
  return useReadinessCheck({
    endpoint,
    check: () => {
      const isDraining = drain?.isDraining() ?? false;
      const isReady = registry.isReady() && !isDraining;
      const models = registry.list().map((m) => ({ id: m.id, state: m.state, ...(m.detail ? { detail: m.detail } : {}) }));
      return new Response(JSON.stringify({ ready: isReady, ...(isDraining ? { draining: true } : {}), models }), {
        status: isReady ? 200 : 503,
        headers: { 'content-type': 'application/json; charset=utf-8' },
      });
    },
  });
}
