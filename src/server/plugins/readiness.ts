// GET /ready: 200 once every model is loaded, 503 before (and if a load failed), with the
// state of each model so an operator sees which one is holding readiness back.
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
      const models = registry.list().map((m) => ({ id: m.id, state: m.state }));
      return new Response(JSON.stringify({ ready: isReady, ...(isDraining ? { draining: true } : {}), models }), {
        status: isReady ? 200 : 503,
        headers: { 'content-type': 'application/json; charset=utf-8' },
      });
    },
  });
}
